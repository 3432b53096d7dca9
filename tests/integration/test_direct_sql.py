"""Fixed statements run straight on the unit of work's pg8000 connection (shared.direct_sql): the
same rows, values and transaction as through SQLAlchemy, the same errors, and a connection that saw
an error the server did not send is discarded."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql import JSONB

from shared import direct_sql
from shared.db import get_engine, is_transient_db_error, unit_of_work

_ECHO = sa.select(
    sa.cast(sa.bindparam("doc", type_=JSONB), sa.Text).label("doc_text"),
    (sa.literal("fixed:", sa.Text) + sa.bindparam("tag", type_=sa.Text)).label("tagged"),
)
_DIVIDE = sa.text("SELECT 10 / CAST(:d AS integer) AS q")
_PROBE = sa.text("INSERT INTO direct_sql_probe (tag) VALUES (:tag) RETURNING tag")


def _taken(statement: object) -> bool:
    entry = direct_sql._COMPILED.get(id(statement))
    return entry is not None and entry[0]() is statement and entry[1] is not None


@pytest.fixture()
def probe_table(database_url: str):
    with get_engine().begin() as conn:
        conn.execute(sa.text("CREATE TABLE IF NOT EXISTS direct_sql_probe (tag text)"))
    yield
    with get_engine().begin() as conn:
        conn.execute(sa.text("DROP TABLE direct_sql_probe"))


def test_rows_values_and_literals_are_sqlalchemy_s(database_url: str):
    for _ in range(3):  # the first through SQLAlchemy, then straight on the driver
        with unit_of_work() as uow:
            [row] = direct_sql.execute(uow, _ECHO, {"doc": {"a": [1, "x"]}, "tag": "t"})
        assert (row.doc_text, row.tagged) == ('{"a": [1, "x"]}', "fixed:t")
        assert row._mapping["tagged"] == "fixed:t" and tuple(row) == ('{"a": [1, "x"]}', "fixed:t")
    assert _taken(_ECHO)


def test_a_statement_runs_in_the_unit_of_work_s_transaction(probe_table):
    tags = [uuid.uuid4().hex for _ in range(3)]
    for tag in tags:
        with pytest.raises(RuntimeError), unit_of_work() as uow:
            assert [r.tag for r in direct_sql.execute(uow, _PROBE, {"tag": tag})] == [tag]
            raise RuntimeError("roll back")
    with unit_of_work() as uow:
        direct_sql.execute(uow, _PROBE, {"tag": "kept"})
    assert _taken(_PROBE)
    with get_engine().connect() as conn:
        assert conn.execute(sa.text("SELECT tag FROM direct_sql_probe")).scalars().all() == ["kept"]


def test_a_server_error_is_sqlalchemy_s_and_keeps_the_connection(database_url: str):
    with unit_of_work() as uow:
        direct_sql.execute(uow, _DIVIDE, {"d": 2})
    for _ in range(2):
        with pytest.raises(sa_exc.DBAPIError) as caught, unit_of_work() as uow:
            direct_sql.execute(uow, _DIVIDE, {"d": 0})
        assert _taken(_DIVIDE)
        assert caught.value.orig.args[0]["C"] == "22012" and not caught.value.connection_invalidated
        assert not is_transient_db_error(caught.value)
    with unit_of_work() as uow:
        assert [r.q for r in direct_sql.execute(uow, _DIVIDE, {"d": 5})] == [2]


def test_a_client_side_error_discards_the_connection(database_url: str):
    for _ in range(2):
        with unit_of_work() as uow:
            direct_sql.execute(uow, _ECHO, {"doc": {}, "tag": "warm"})
    with pytest.raises(UnicodeEncodeError), unit_of_work() as uow:
        poisoned = uow.session.connection().connection.driver_connection
        direct_sql.execute(uow, _ECHO, {"doc": {}, "tag": "a\ud800b"})
    for n in range(20):  # never that connection again, and every statement gets its own answer
        with unit_of_work() as uow:
            assert uow.session.connection().connection.driver_connection is not poisoned
            [row] = direct_sql.execute(uow, _ECHO, {"doc": {"n": n}, "tag": str(n)})
        assert (row.doc_text, row.tagged) == (f'{{"n": {n}}}', f"fixed:{n}")
