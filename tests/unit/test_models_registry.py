"""shared.models loads every model module on first use, under one lock, before it hands out a class: no
thread can hold a mapped class — and let SQLAlchemy configure the mappers at its first query — while
another thread is half-way through a model module. ``load_all()`` registers every table; each model
module alone still configures and resolves its foreign keys; code outside shared/models takes its
classes from the package, never from a model module.

Each check runs in a fresh interpreter: this test process has long since imported every model.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from shared import models

ROOT = Path(__file__).resolve().parents[2]

_PROBE = """
import json, sys
from sqlalchemy.orm import configure_mappers
from sqlalchemy.sql.ddl import sort_tables
from shared import models
exec(sys.argv[1])
configure_mappers()
tables = list(models.Base.metadata.tables.values())
# what a flush does per mapper: sort its tables by their foreign keys, which resolves each referenced table
sort_tables(tables)
print(json.dumps({"modules": sorted(m for m in sys.modules if m.startswith("shared.models.")),
                  "tables": sorted(models.Base.metadata.tables),
                  "fks": sorted(fk.column.table.name for t in tables for fk in t.foreign_keys)}))
"""


def _run(code: str) -> dict:
    out = subprocess.run([sys.executable, "-c", _PROBE, code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_load_all_registers_every_table_of_every_model_module():
    seen = _run("models.load_all()")
    assert seen["modules"] == sorted({"shared.models.base", *(f"shared.models.{m}" for m in models.MODULES)})
    classes = [getattr(models, name) for name in models.__all__ if isinstance(getattr(models, name), type)]
    assert {c.__table__.name for c in classes if c is not models.Base} <= set(seen["tables"])
    assert len(seen["tables"]) == len(models.load_all().tables) >= 28


def test_importing_the_package_loads_no_model():
    assert _run("from shared.models import Base")["modules"] == ["shared.models.base"]


def test_the_first_model_used_loads_every_model_module():
    every = sorted({"shared.models.base", *(f"shared.models.{m}" for m in models.MODULES)})
    assert _run("from shared.models import ProcessedEvent")["modules"] == every
    assert _run("from shared.models import JobRun, JobState")["modules"] == every


def test_every_model_module_is_known_to_the_package():
    files = {p.stem for p in (ROOT / "shared" / "models").glob("*.py")} - {"__init__", "base"}
    assert files == set(models.MODULES)


def test_no_code_outside_the_package_takes_a_class_from_a_model_module():
    """A class imported straight from its module could be used (and the mappers configured) before the
    package has loaded the others; constants may be imported from there."""
    import ast  # noqa: PLC0415
    import importlib  # noqa: PLC0415

    taken = []
    for path in [*(ROOT / "shared").rglob("*.py"), *(ROOT / "functions").rglob("*.py")]:
        if path.is_relative_to(ROOT / "shared" / "models"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("shared.models."):
                module = importlib.import_module(node.module)
                taken += [f"{path.relative_to(ROOT)}: {node.module}.{a.name}" for a in node.names
                          if isinstance(getattr(module, a.name, None), type) and hasattr(getattr(module, a.name), "__mapper__")]
    assert taken == []


@pytest.mark.parametrize("module", models.MODULES)
def test_each_model_module_alone_configures_and_resolves_its_foreign_keys(module):
    seen = _run(f"import shared.models.{module}")
    assert f"shared.models.{module}" in seen["modules"]


def test_relationships_between_models_resolve_once_loaded():
    code = ("from shared.models import LabResult, Patient\n"
            "assert LabResult.order.property.mapper.class_.__name__ == 'LabOrder'\n"
            "assert Patient.identifiers.property.mapper.class_.__name__ == 'PatientIdentifier'\n")
    assert {"shared.models.orders", "shared.models.patients"} <= set(_run(code)["modules"])


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError):
        models.NoSuchModel  # noqa: B018
    with pytest.raises(ImportError):
        exec("from shared.models import NoSuchModel", {})
