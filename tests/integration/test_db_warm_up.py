"""The pool starts with one connection, opened before the first request (shared.db.warm_up), and grows
only as concurrent requests need more."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import event

from shared import db
from shared.settings import reset_settings


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
