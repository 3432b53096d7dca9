"""shared.models loads each model module on first use: ``load_all()`` registers every table, importing
one model loads only its module and those of the tables its foreign keys reference, and every mapped
class that is loaded can be configured and flushed (its foreign keys resolve) without the others.

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


def test_importing_one_model_loads_its_module_and_those_its_foreign_keys_reference_only():
    seen = _run("from shared.models import ProcessedEvent")
    assert seen["modules"] == ["shared.models.base", "shared.models.events"]
    seen = _run("from shared.models import LisMessage")
    assert seen["modules"] == ["shared.models.base", "shared.models.lis", "shared.models.patients"]
    assert "patients" in seen["fks"]  # resolved: lis_messages.patient_id
    # a tick's runner: the runs and the per-job state, without the patient and order tables
    assert _run("from shared.models import JobRun, JobState")["modules"] == ["shared.models.base", "shared.models.job_runs"]


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
