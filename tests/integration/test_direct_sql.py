"""SQL text run straight on the ORM unit of work's pg8000 connection (shared.direct_sql.execute_text):
the same rows and transaction as through SQLAlchemy, ORM objects flushed first, the same errors, and a
connection that saw an error the server did not send is discarded."""

from __future__ import annotations

import json
import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from shared import direct_sql
from shared.db import get_engine, is_transient_db_error, unit_of_work

_ECHO = "SELECT CAST(CAST(%s AS jsonb) AS text) AS doc_text, 'fixed:' || CAST(%s AS text) AS tagged"
_DIVIDE = "SELECT 10 / CAST(%s AS integer) AS q"
_PROBE = "INSERT INTO direct_sql_probe (tag) VALUES (%s) RETURNING tag"


@pytest.fixture()
def probe_table(database_url: str):
    with get_engine().begin() as conn:
        conn.execute(sa.text("CREATE TABLE IF NOT EXISTS direct_sql_probe (tag text)"))
    yield
    with get_engine().begin() as conn:
        conn.execute(sa.text("DROP TABLE direct_sql_probe"))


@pytest.mark.parametrize("pipelined", [False, True])
def test_rows_are_readable_by_column_name(database_url: str, pipelined: bool):
    for _ in range(3):  # prepared on the connection the first time, then reused
        with unit_of_work() as uow:
            [row] = direct_sql.execute_text(uow, _ECHO, [json.dumps({"a": [1, "x"]}), "t"], pipelined=pipelined)
        assert (row.doc_text, row.tagged) == ('{"a": [1, "x"]}', "fixed:t")
        assert row._mapping["tagged"] == "fixed:t" and tuple(row) == ('{"a": [1, "x"]}', "fixed:t")


def test_a_statement_runs_in_the_unit_of_work_s_transaction(probe_table):
    for tag in [uuid.uuid4().hex for _ in range(3)]:
        with pytest.raises(RuntimeError), unit_of_work() as uow:
            assert [r.tag for r in direct_sql.execute_text(uow, _PROBE, [tag])] == [tag]
            raise RuntimeError("roll back")
    with unit_of_work() as uow:
        direct_sql.execute_text(uow, _PROBE, ["kept"])
    with get_engine().connect() as conn:
        assert conn.execute(sa.text("SELECT tag FROM direct_sql_probe")).scalars().all() == ["kept"]


def test_orm_objects_waiting_are_flushed_before_the_text(database_url: str):
    from shared.models import ProcessedEvent  # noqa: PLC0415

    event_id = uuid.uuid4().hex
    with pytest.raises(RuntimeError), unit_of_work() as uow:
        uow.session.add(ProcessedEvent(consumer="direct-sql-test", source="test", event_id=event_id))
        [row] = direct_sql.execute_text(uow, "SELECT count(*) AS n FROM processed_events WHERE event_id = %s", [event_id])
        assert row.n == 1
        raise RuntimeError("roll back")
    with get_engine().connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM processed_events WHERE event_id = :e"), {"e": event_id}).scalar() == 0


def test_a_server_error_is_sqlalchemy_s_and_keeps_the_connection(database_url: str):
    with unit_of_work() as uow:
        direct_sql.execute_text(uow, _DIVIDE, [2])
        kept = uow.session.connection().connection.driver_connection
    for _ in range(2):
        with pytest.raises(sa_exc.DBAPIError) as caught, unit_of_work() as uow:
            direct_sql.execute_text(uow, _DIVIDE, [0])
        assert caught.value.orig.args[0]["C"] == "22012" and not caught.value.connection_invalidated
        assert not is_transient_db_error(caught.value)
    with unit_of_work() as uow:
        assert [r.q for r in direct_sql.execute_text(uow, _DIVIDE, [5])] == [2]
        assert uow.session.connection().connection.driver_connection is kept


def test_a_client_side_error_discards_the_connection(database_url: str):
    for _ in range(2):
        with unit_of_work() as uow:
            direct_sql.execute_text(uow, _ECHO, ["{}", "warm"])
    with pytest.raises(UnicodeEncodeError), unit_of_work() as uow:
        poisoned = uow.session.connection().connection.driver_connection
        direct_sql.execute_text(uow, _ECHO, ["{}", "a\ud800b"])
    for n in range(20):  # never that connection again, and every statement gets its own answer
        with unit_of_work() as uow:
            assert uow.session.connection().connection.driver_connection is not poisoned
            [row] = direct_sql.execute_text(uow, _ECHO, [json.dumps({"n": n}), str(n)])
        assert (row.doc_text, row.tagged) == (f'{{"n": {n}}}', f"fixed:{n}")
