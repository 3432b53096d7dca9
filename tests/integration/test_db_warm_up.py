"""The pool starts with one connection, opened before the first request (shared.db.warm_up), and grows
only as concurrent requests need more."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event

from shared import db
from shared.settings import reset_settings

ROOT = Path(__file__).resolve().parents[2]


def _connects(engine: sa.Engine) -> list[object]:
    opened: list[object] = []
    event.listen(engine, "connect", lambda dbapi_conn, _record: opened.append(dbapi_conn))
    return opened


def test_warm_up_opens_one_connection_that_the_first_request_reuses(database_url):
    db.dispose_engine()
    engine = db.get_engine()
    opened = _connects(engine)
    db.start_warm_up().join(timeout=30)
    assert len(opened) == 1
    assert engine.pool.checkedin() == 1  # idle in the pool, not held
    with db.unit_of_work() as uow:
        assert uow.execute(sa.text("SELECT 1")).scalar() == 1
    assert len(opened) == 1  # the first unit of work connected to nothing new
    with db.unit_of_work() as first, db.unit_of_work() as second:  # two at once: the pool grows by one
        first.execute(sa.text("SELECT 1"))
        second.execute(sa.text("SELECT 1"))
    assert len(opened) == 2
    assert engine.pool.checkedin() == 2
    db.dispose_engine()


def test_warm_up_against_an_unreachable_database_neither_raises_nor_leaves_a_connection(database_url, closed_port,
                                                                                        monkeypatch, caplog):
    monkeypatch.setenv("DATABASE_URL", f"postgresql+pg8000://nobody@127.0.0.1:{closed_port}/none")
    reset_settings()
    db.dispose_engine()
    try:
        db.warm_up()
        assert db.get_engine().pool.checkedin() == 0
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
        assert db._engine is None
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
    assert db.get_engine().pool.checkedin() == 1
    db.dispose_engine()
