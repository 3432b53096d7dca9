"""The pool starts with one connection, opened before the first request (shared.db.warm_up), and grows
only as concurrent requests need more; the ORM's engine borrows from the same pool."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import sqlalchemy as sa

from shared import db
from shared.db.pool import get_pool
from shared.settings import reset_settings

ROOT = Path(__file__).resolve().parents[2]


def test_warm_up_opens_one_connection_that_the_first_request_reuses(database_url):
    db.dispose_engine()
    db.start_warm_up().join(timeout=30)
    pool = get_pool()
    assert pool.opened == 1
    assert pool.idle() == 1  # idle in the pool, not held
    with db.unit_of_work() as uow:
        assert uow.execute(sa.text("SELECT 1")).scalar() == 1
    assert pool.opened == 1  # the first unit of work connected to nothing new
    with db.unit_of_work() as first, db.unit_of_work() as second:  # two at once: the pool grows by one
        first.execute(sa.text("SELECT 1"))
        second.execute(sa.text("SELECT 1"))
    assert pool.opened == 2
    assert pool.idle() == 2
    db.dispose_engine()


def test_the_orm_waits_until_the_pool_has_been_idle(database_url):
    """``warm_up(orm_after_idle=…)`` (the api's: its hot routes need no ORM) loads the ORM only once no
    connection has been lent or returned for that long, so it never takes the GIL from a request."""
    db.dispose_engine()
    pool = get_pool()
    held = pool.acquire()  # a request in flight
    thread = threading.Thread(target=db.warm_up, kwargs={"orm_after_idle": 0.2})
    thread.start()
    thread.join(timeout=0.6)
    assert thread.is_alive()  # still waiting: a connection is lent
    pool.release(held)
    thread.join(timeout=30)
    assert not thread.is_alive()
    db.dispose_engine()


def test_warm_up_against_an_unreachable_database_neither_raises_nor_leaves_a_connection(database_url, closed_port,
                                                                                        monkeypatch, caplog):
    monkeypatch.setenv("DATABASE_URL", f"postgresql+pg8000://nobody@127.0.0.1:{closed_port}/none")
    reset_settings()
    db.dispose_engine()
    try:
        db.warm_up()
        assert get_pool().idle() == 0
        assert any(r.getMessage() == "database warm-up failed" for r in caplog.records)
    finally:
        monkeypatch.setenv("DATABASE_URL", database_url)
        reset_settings()
        db.dispose_engine()


def test_without_database_url_warm_up_starts_no_embedded_postgresql(database_url, monkeypatch):
    monkeypatch.delenv("DATABASE_URL")
    monkeypatch.setenv("DATA_DIR", "/nonexistent/warm-up")  # an embedded server would be started here
    reset_settings()
    db.dispose_engine()
    try:
        db.warm_up()
        from shared.db.pool import current_pool  # noqa: PLC0415

        assert current_pool() is None
    finally:
        monkeypatch.setenv("DATABASE_URL", database_url)
        reset_settings()
        db.dispose_engine()


def test_a_worker_warms_the_pool_only_when_its_function_uses_the_database(database_url):
    """gunicorn's post_worker_init hook (shared.serve): a function that never imported shared.db
    (a hello-world) opens no connection and loads no SQLAlchemy."""
    program = ("import sys; from shared.serve import _post_worker_init; _post_worker_init(None); "
               "print(sorted(m for m in sys.modules if m == 'shared.db' or m.startswith('sqlalchemy'))[:1])")
    out = subprocess.run([sys.executable, "-c", program], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "DATABASE_URL": database_url})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"

    from shared.serve import _post_worker_init  # noqa: PLC0415

    db.dispose_engine()
    _post_worker_init(None)
    for thread in threading.enumerate():
        if thread.name == "db-warm-up":
            thread.join(timeout=30)
    assert get_pool().idle() == 1
    db.dispose_engine()


_WARM_UP = """
import json, sys
from shared import db
from shared.models import ProcessedEvent  # what a CloudEvent function's code imported
db.warm_up(orm_after_idle=float(sys.argv[1]) if sys.argv[1] != "-" else None)
from sqlalchemy.orm import class_mapper
print(json.dumps({"engine": "shared.db.orm" in sys.modules and sys.modules["shared.db.orm"]._engine is not None,
                  "models": sorted(m for m in sys.modules if m.startswith("shared.models.")),
                  "configured": class_mapper(ProcessedEvent).configured}))
"""


def test_every_warm_up_loads_and_configures_every_model(database_url):
    """The api (``orm_after_idle``) and a CloudEvent function alike: the engine initialised and every
    model loaded and configured, for whichever request comes next (``shared.models`` hands out no class
    before every model module is loaded)."""
    from shared import models  # noqa: PLC0415

    every = sorted({"shared.models.base", *(f"shared.models.{m}" for m in models.MODULES)})
    for wait in ("0.05", "-"):
        out = subprocess.run([sys.executable, "-c", _WARM_UP, wait], cwd=ROOT, capture_output=True, text=True,
                             timeout=120, env={**os.environ, "DATABASE_URL": database_url})
        assert out.returncode == 0, out.stderr
        seen = json.loads(out.stdout.strip().splitlines()[-1])
        assert seen == {"engine": True, "models": every, "configured": True}


_CONSUMER_WARM_UP = """
import json, sys, threading
{imports}
from shared import db
db.ORM_AFTER_IDLE_SECONDS = 0.05
loaded_at_start = "sqlalchemy.orm" in sys.modules
db.start_warm_up().join(60)
print(json.dumps({{"at_start": loaded_at_start, "orm": "sqlalchemy.orm" in sys.modules,
                  "models": sorted(m for m in sys.modules if m.startswith("shared.models."))}}))
"""
_JOBS_IMPORTS = "from shared import consumer, db  # noqa: F401  what the jobs function's code imports: no SQLAlchemy"
_LIS_IMPORTS = """import importlib.util, flask, functions_framework  # noqa: F401
spec = importlib.util.spec_from_file_location("function_main", "functions/lis_consumer/main.py")
spec.loader.exec_module(importlib.util.module_from_spec(spec))  # what a cold lis_consumer imports"""


def _warmed(database_url: str, imports: str) -> dict:
    """What a process that imported `imports` holds once its warm-up thread is done."""
    out = subprocess.run([sys.executable, "-c", _CONSUMER_WARM_UP.format(imports=imports)], cwd=ROOT,
                         capture_output=True, text=True, timeout=120, env={**os.environ, "DATABASE_URL": database_url})
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_consumer_that_imported_no_orm_loads_it_once_idle(database_url):
    """jobs (its tick needs no ORM): the ORM and every model load once the pool is idle."""
    from shared import models  # noqa: PLC0415

    seen = _warmed(database_url, _JOBS_IMPORTS)
    assert seen == {"at_start": False, "orm": True, "models": sorted(f"shared.models.{m}" for m in ("base", *models.MODULES))}


def test_lis_consumer_loads_the_orm_once_idle_as_jobs_does(database_url):
    """lis_consumer (its ORU runs as SQL text on the driver pool) imports no SQLAlchemy: its warm-up waits
    for the pool to be idle, then loads the ORM and every model for the messages that need them."""
    from shared import models  # noqa: PLC0415

    seen = _warmed(database_url, _LIS_IMPORTS)
    assert seen == {"at_start": False, "orm": True, "models": sorted(f"shared.models.{m}" for m in ("base", *models.MODULES))}


# A subprocess's tracer that pauses the import of a model module at a line, until `resume` is set.
_PAUSER = """
import sys, threading
paused, resume = threading.Event(), threading.Event()

def pause_at(path, line, seconds):
    def tracer(frame, event, arg):
        if frame.f_code.co_filename.endswith(path) and frame.f_code.co_name == "<module>":
            def lines(frame, event, arg):
                if event == "line" and frame.f_lineno == line:
                    paused.set()
                    resume.wait(seconds)
                return lines
            return lines
        return None
    return tracer
"""

_HALF_IMPORTED = _PAUSER + """
import json
from shared import consumer, db  # noqa: F401  what notify's code imports: no SQLAlchemy, no model

def first_orm_event():  # a result.available event's first use of the models, paused half-way
    sys.settrace(pause_at("shared/models/patients.py", int(sys.argv[1]), 60))
    from shared.models import Patient  # noqa: F401
    sys.settrace(None)

request = threading.Thread(target=first_orm_event)
request.start()
assert paused.wait(60)
warm_up = threading.Thread(target=db.warm_up)  # the ORM once idle: the engine, then configure
warm_up.start()
warm_up.join(5)  # time to import SQLAlchemy, connect and configure, were it not held back
resume.set()
request.join(60)
warm_up.join(60)
from sqlalchemy.orm import configure_mappers
from shared.models import Patient
configure_mappers()
print(json.dumps({"configured": Patient.__mapper__.configured,
                  "relationship": Patient.identifiers.property.mapper.class_.__name__}))
"""


def test_the_warm_up_never_configures_a_model_module_half_imported(database_url):
    """notify and jobs load the ORM in the background once idle, and configure the mappers there. An ORM
    event arriving then imports its models in its own thread; configured between ``Patient`` and
    ``PatientIdentifier`` (its relationship's target), ``Patient`` would fail for the life of the process.
    The warm-up waits for an import through ``shared.models`` to finish (``shared.mappers``)."""
    line = next(n for n, text in enumerate((ROOT / "shared/models/patients.py").read_text().splitlines(), 1)
                if text.startswith("class PatientIdentifier("))
    out = subprocess.run([sys.executable, "-c", _HALF_IMPORTED, str(line)], cwd=ROOT, capture_output=True, text=True,
                         timeout=180, env={**os.environ, "DATABASE_URL": database_url})
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"configured": True, "relationship": "PatientIdentifier"}


_CONFIGURED_BESIDE_AN_IMPORT = _PAUSER + """
import json
from sqlalchemy.orm import configure_mappers
from shared.models import ProcessedEvent  # a request that took its class first (an inbox check)

def first_order_request():  # another request's first use of the order tables
    sys.settrace(pause_at("shared/models/orders.py", int(sys.argv[1]), 10))
    from shared.models import LabOrder  # noqa: F401
    sys.settrace(None)

other = threading.Thread(target=first_order_request)
other.start()
half_way = paused.wait(3)  # only if orders.py was still to be imported
error = None
try:
    configure_mappers()  # what the first request's query does in its own thread
except Exception as exc:
    error = type(exc).__name__
resume.set()
other.join(30)
from shared.models import LabOrder
print(json.dumps({"half_way": half_way, "error": error,
                  "results": LabOrder.results.property.mapper.class_.__name__}))
"""


def test_no_class_is_handed_out_while_a_model_module_is_half_imported():
    """One request thread holds a class and its query configures the mappers while another thread's
    first use of another model is half-way through that model's module (``LabOrder`` mapped, its
    relationship's target ``LabResult`` not yet): configured then, ``LabOrder`` would fail for the life
    of the process. Since the first class handed out came after every model module was loaded, there
    is no module left to import half-way."""
    line = next(n for n, text in enumerate((ROOT / "shared/models/orders.py").read_text().splitlines(), 1)
                if text.startswith("class LabResult("))
    out = subprocess.run([sys.executable, "-c", _CONFIGURED_BESIDE_AN_IMPORT, str(line)], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"half_way": False, "error": None, "results": "LabResult"}
