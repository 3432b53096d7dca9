"""Which commits wait for their WAL flush: the writer's commit (its data and outbox rows) always; the
immediate publish's commit of the outcomes it records never (``relay._CLAIM_COMMITTED`` turns
``synchronous_commit`` off for that transaction alone: a mark lost in a crash only sends the row
again).

Checked on the wire: right before every COMMIT a connection sends, the test asks the same
connection, in the same transaction, ``SHOW synchronous_commit``; right before an implicit transaction
(``wire.transaction``: its Sync is the commit, and none of its statements sets the setting), the
session's setting, which that transaction commits with."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pg8000.core
import pytest

from shared.auth import Principal
from shared.db import driver_connection, wire
from shared.events import catalog
from shared.events.publishing.relay import publish_committed
from shared.schemas.patients import PatientCreate
from shared.services import patient_sql
from tests.integration.events.helpers import emit_events, outbox_rows
from tests.support.sink import http_sink

pytestmark = pytest.mark.integration
CLERK = Principal(key_id=None, name="test:clerk", scopes=frozenset({"patients:write"}))
_ENDS_WITH_COMMIT = re.compile(r"(?:^|;)\s*commit\s*;?\s*$", re.IGNORECASE)


@contextmanager
def commits() -> Iterator[list[tuple[str, str]]]:
    """(what committed, its synchronous_commit) for every COMMIT sent while the block runs: "record"
    for the publish's statement that records the outcomes, "commit" for any other."""
    seen: list[tuple[str, str]] = []
    simple, unnamed = pg8000.core.CoreConnection.execute_simple, pg8000.core.CoreConnection.execute_unnamed
    transaction = wire.transaction

    def before(con, sql: str) -> None:  # noqa: ANN001
        if isinstance(sql, str) and _ENDS_WITH_COMMIT.search(sql) and con._in_transaction:
            setting = simple(con, "SHOW synchronous_commit").rows[0][0]
            seen.append(("record" if "WITH recorded" in sql else "commit", setting))

    def on_simple(self, statement, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        before(self, statement)
        return simple(self, statement, *args, **kwargs)

    def on_unnamed(self, statement, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        before(self, statement)
        return unnamed(self, statement, *args, **kwargs)

    def on_transaction(con, statements):  # noqa: ANN001, ANN202
        statements = list(statements)
        assert not any("synchronous_commit" in sql for sql, _params in statements)
        seen.append(("commit", simple(con, "SHOW synchronous_commit").rows[0][0]))
        return transaction(con, statements)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(wire, "transaction", on_transaction)
        patch.setattr(pg8000.core.CoreConnection, "execute_simple", on_simple)
        patch.setattr(pg8000.core.CoreConnection, "execute_unnamed", on_unnamed)
        yield seen


def _body(family: str) -> PatientCreate:
    return PatientCreate.model_validate_json(f'{{"name": {{"family": "{family}", "given": ["Eve"]}}, "birth_date": "1970-05-06"}}')


def test_a_registration_commits_synchronously_and_its_publish_records_without_waiting_for_the_flush(use_sink):
    with http_sink() as sink:
        use_sink(k_sink=sink.url)
        with commits() as seen:
            doc = patient_sql.register_patient(CLERK, _body("Dur" + uuid.uuid4().hex[:10]), reject_duplicates=True)
    assert seen == [("commit", "on"), ("record", "off")]
    assert len(sink.ids()) == 1
    [row] = outbox_rows([uuid.UUID(sink.ids()[0])]).values()
    assert row.subject == doc["id"] and row.published_at is not None


def test_a_unit_of_work_commits_synchronously_and_its_publish_records_without_waiting_for_the_flush(use_sink):
    """The path of every writer with a unit of work (the LIS consumer's among them)."""
    subject = uuid.uuid4()
    with http_sink() as sink:
        use_sink(k_sink=sink.url)
        with commits() as seen:
            ids = emit_events((catalog.PATIENT_REGISTERED, subject), (catalog.PATIENT_UPDATED, subject))
    assert seen == [("commit", "on"), ("record", "off")]
    assert all(r.published_at is not None for r in outbox_rows(ids).values())


def test_the_unsynced_commit_ends_with_the_publish_transaction(use_sink):
    """The setting is the transaction's alone: the pooled connection the publish used (lent again
    first: the pool is last in, first out) commits the next writer's transaction synchronously."""
    [event_id] = emit_events((catalog.PATIENT_REGISTERED, uuid.uuid4()))
    with http_sink() as sink:
        use_sink(k_sink=sink.url)
        assert publish_committed([event_id]).published == 1
    with driver_connection() as con:
        assert wire.simple(con, "SHOW synchronous_commit").rows == [["on"]]
        wire.simple(con, "BEGIN")
        assert wire.simple(con, "SHOW synchronous_commit").rows == [["on"]]
        wire.simple(con, "ROLLBACK")


def test_a_failed_attempt_is_recorded_without_waiting_for_the_flush_too(use_sink):
    with http_sink(lambda _r: 503) as sink:
        use_sink(k_sink=sink.url)
        [event_id] = emit_events((catalog.PATIENT_REGISTERED, uuid.uuid4()))
        with commits() as seen:
            publish_committed([event_id])
    assert seen == [("record", "off")]
    row = outbox_rows([event_id])[event_id]
    assert (row.published_at, row.attempts, row.last_error) == (None, 2, "http_503")
