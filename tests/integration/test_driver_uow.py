"""The unit of work on the driver pool (shared.db.driver_uow), as the LIS fast path uses it: committed at
the end of the block and only then its after-commit callbacks, rolled back on any error (callbacks never
run), a server's error keeps the connection, one the server did not send closes it, and the ORM's session
is not there: reaching for it raises NeedsOrm before anything of that step is sent. `run` sends the
same text on the ORM's unit of work, in its transaction."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from shared.db import get_engine, unit_of_work
from shared.db.driver_uow import DriverUnitOfWork, NeedsOrm, driver_unit_of_work, run
from shared.db.pool import get_pool
from tests.integration.test_direct_sql import probe_table  # noqa: F401 — the fixture: a table of its own


def _stored(tag: str) -> bool:
    with get_engine().connect() as conn:
        return conn.execute(sa.text("SELECT count(*) FROM direct_sql_probe WHERE tag = :t"), {"t": tag}).scalar() == 1


_INSERT = "INSERT INTO direct_sql_probe (tag) VALUES (%s) RETURNING tag"


def test_the_block_commits_then_runs_its_callbacks(probe_table):
    tag, seen = uuid.uuid4().hex, []
    with driver_unit_of_work() as uow:
        assert [tuple(r) for r in run(uow, _INSERT, (tag,))] == [(tag,)]
        assert run(uow, _INSERT.replace("RETURNING tag", ""), (tag + "b",)) == []  # no columns, no rows
        uow.after_commit(lambda: seen.append(_stored(tag)))
        assert not _stored(tag)  # not committed yet: another connection does not see it
    assert seen == [True] and _stored(tag + "b")


def test_an_error_rolls_everything_back_and_runs_no_callback(probe_table):
    tag, seen = uuid.uuid4().hex, []
    with pytest.raises(RuntimeError), driver_unit_of_work() as uow:
        run(uow, _INSERT, (tag,))
        uow.after_commit(lambda: seen.append("called"))
        raise RuntimeError("our bug")
    assert seen == [] and not _stored(tag)


def test_a_server_error_keeps_the_connection_a_client_side_one_closes_it(probe_table):
    tag = uuid.uuid4().hex
    pool = get_pool()
    with driver_unit_of_work() as uow:
        pid = run(uow, "SELECT pg_backend_pid() AS pid", ())[0].pid
    with pytest.raises(Exception) as raised, driver_unit_of_work() as uow:  # noqa: PT011 — pg8000's, as its cursor raises it
        assert run(uow, "SELECT pg_backend_pid() AS pid", ())[0].pid == pid
        run(uow, _INSERT, (tag,))
        run(uow, "SELECT 1 / %s::int", (0,))
    assert raised.value.args[0]["C"] == "22012" and not _stored(tag)
    with driver_unit_of_work() as uow:
        assert run(uow, "SELECT pg_backend_pid() AS pid", ())[0].pid == pid  # the same connection, in step
    with pytest.raises(UnicodeEncodeError), driver_unit_of_work() as uow:
        bad = uow.con
        run(uow, _INSERT, ("a\ud800b",))  # pg8000 cannot encode it: the connection is out of step
    assert bad._pool_out_of_step and all(con is not bad for con in pool._idle)  # closed, not returned
    with driver_unit_of_work() as uow:
        assert run(uow, "SELECT pg_backend_pid() AS pid", ())[0].pid != pid


def test_the_session_is_not_there(probe_table):
    tag = uuid.uuid4().hex
    with pytest.raises(NeedsOrm), driver_unit_of_work() as uow:
        run(uow, _INSERT, (tag,))
        uow.session.execute(sa.text("SELECT 1"))
    assert not _stored(tag)


def test_run_sends_the_same_text_in_the_orm_unit_of_work(probe_table):
    tag = uuid.uuid4().hex
    sent: list[str] = []

    def seen(_conn, _cursor, statement, *_rest) -> None:  # noqa: ANN001, ANN002
        sent.append(statement)

    sa.event.listen(get_engine(), "before_cursor_execute", seen)
    try:
        with unit_of_work() as uow:
            assert not isinstance(uow, DriverUnitOfWork)
            uow.session.execute(sa.text("INSERT INTO direct_sql_probe (tag) VALUES (:t)"), {"t": tag + "orm"})
            rows = run(uow, "SELECT tag FROM direct_sql_probe WHERE tag = ANY(%s::text[]) ORDER BY tag",
                       ([tag, tag + "orm"],))
            assert [r.tag for r in rows] == [tag + "orm"]  # the session's own write, in the same transaction
            run(uow, _INSERT, (tag,))
    finally:
        sa.event.remove(get_engine(), "before_cursor_execute", seen)
    assert _stored(tag) and _stored(tag + "orm")
    assert _INSERT in sent  # listeners (statement counting) see it
