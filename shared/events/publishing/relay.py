"""Publish outbox rows and mark them published: the immediate path after a commit, and one batch
of the sweeper.

Safety when several processes publish at once:
- rows are claimed with ``SELECT … FOR UPDATE SKIP LOCKED`` and stay locked until their outcome is
  committed, so two publishers never send the same row in the same round (each row is published at
  least once and marked published once: ``UPDATE … WHERE published_at IS NULL``);
- per subject, order holds: a row is sent only when no older unpublished row of its subject is
  outside this claim (locked by another publisher, or failed), and after a failure the subject's
  later rows in the claim wait. A subject whose oldest event keeps failing blocks its later events.
If the sink accepted an event but the mark is lost (crash), the row is sent again later with the
same CloudEvent id; consumers dedupe on (source, id).

The immediate path (``publish_committed``, after every request that emits) keeps these rules in
two statements and two round trips on a pg8000 connection of the process's one pool, no SQLAlchemy:
``_CLAIM_COMMITTED`` (with its BEGIN) claims the committed rows and, in the same statement, tells
which must wait for an older unpublished row of their subject outside the claim;
``_RECORD_OUTCOMES`` (with its COMMIT) marks the published rows and records the failed attempts.
That commit does not wait for its WAL flush (``synchronous_commit`` off for this transaction alone,
set by the claim): a mark lost in a crash of PostgreSQL only sends its row again. The writer's own
commit stays synchronous (see ``_CLAIM_COMMITTED``).
``tests/integration/events/test_immediate_publish_statements.py`` holds it to that. Requests that
publish at the same moment share one claim, one record and one commit (``group``): a round for all
of them, each answered with its own rows' outcome. The sweeper's ``publish_batch`` runs the same two
statements on the same pool: its claim (``_claim_oldest``) takes the oldest unpublished rows, up to
its batch size, leaving out the rows and subjects that failed earlier in the sweep, and its commit
stays synchronous; no SQLAlchemy either, so a cold ``outbox-sweep`` tick loads none.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

from shared.db import driver_connection, wire
from shared.events.publishing import NOT_ATTEMPTED, Publisher, publisher_from_settings
from shared.events.publishing.envelope import from_outbox_row
from shared.events.publishing.group import group_for
from shared.log import get_logger

log = get_logger("patient_mgt.events.publish")


@dataclass
class BatchResult:
    claimed: int = 0
    published: int = 0
    failed: int = 0  # the sink refused or timed out (attempt recorded on the row)
    deferred: int = 0  # not sent: an older event of the subject is unpublished, or no time was left
    failed_ids: set[uuid.UUID] = field(default_factory=set)
    blocked_subjects: set[str] = field(default_factory=set)
    errors: dict[str, int] = field(default_factory=dict)
    # The immediate publish's outcome of each claimed row: (PUBLISHED, SENT, DEFERRED or FAILED, the
    # error code, the subject), so a round run for several requests can answer each for its own rows.
    fates: dict[uuid.UUID, tuple[str, str | None, str | None]] = field(default_factory=dict, repr=False)

    def part(self, ids: Iterable[uuid.UUID]) -> BatchResult:
        """This round's outcome for ``ids`` alone (rows it did not claim count nowhere)."""
        out = BatchResult()
        for row_id in ids:
            fate = self.fates.get(row_id)
            if fate is None:
                continue
            state, code, subject = fate
            out.fates[row_id] = fate
            out.claimed += 1
            if state == PUBLISHED:
                out.published += 1
                continue
            if state == SENT:  # accepted, but marked published by another publisher meanwhile
                continue
            if subject is not None:
                out.blocked_subjects.add(subject)
            if state == DEFERRED:
                out.deferred += 1
            else:
                out.failed += 1
                out.failed_ids.add(row_id)
                out.errors[code or ""] = out.errors.get(code or "", 0) + 1
        return out


PUBLISHED, SENT, DEFERRED, FAILED = "published", "sent", "deferred", "failed"


def publish_batch(
    publisher: Publisher,
    *,
    ids: Collection[uuid.UUID] | None = None,
    limit: int = 100,
    timeout: float,
    deadline: float,
    exclude_ids: Iterable[uuid.UUID] = (),
    exclude_subjects: Iterable[str] = (),
) -> BatchResult:
    """Claim up to ``limit`` unpublished rows (oldest first; only ``ids`` when given; none of
    ``exclude_ids``, none of a subject in ``exclude_subjects``), publish them in order, and commit
    the outcome: two statements and two round trips on the driver pool (``_publish_rows``)."""
    claim = _claim_oldest(limit, ids=ids, exclude_ids=exclude_ids, exclude_subjects=exclude_subjects)
    return _publish_rows(publisher, claim, timeout=timeout, deadline=deadline)


def _tally(result: BatchResult, row: Any, outcome: Any) -> str | None:
    """Count one sent row's outcome into ``result``; returns None when the sink took it, else the
    outcome's code (a code in NOT_ATTEMPTED: deferred, not an attempt). A failure blocks its subject."""
    if outcome is None:
        return None
    if row.subject is not None:
        result.blocked_subjects.add(row.subject)
    if outcome.code in NOT_ATTEMPTED:
        result.deferred += 1
    else:
        result.failed += 1
        result.failed_ids.add(row.id)
        result.errors[outcome.code] = result.errors.get(outcome.code, 0) + 1
    return outcome.code


# The sweep's claim (``_claim_oldest``): BEGIN, then unpublished rows ({which}: the oldest, given ids, none of
# the excluded) that no other publisher holds, locked until this transaction ends, with the columns of their
# CloudEvent; ``waits`` when an older unpublished row of the subject is outside the claim (held by
# another publisher, or failed earlier). MATERIALIZED: the claim is read twice and must be the one set
# of rows locked. The claim and the subject-order check read one snapshot: a row of the subject that
# another publisher marks published meanwhile still counts as unpublished, so the rows behind it wait
# for the next round (never the other way round).
# What both claims answer, from their CTE ``claimed``: the rows' CloudEvent columns and ``waits``
# (``{also}``: further columns).
_CLAIMED_ROWS = """\
SELECT c.id, c.source, c.type, c.subject, c.time, c.dataschema, c.data, c.traceparent, c.tracestate,
       c.subject IS NOT NULL AND EXISTS (
           SELECT 1 FROM outbox o
           WHERE o.subject = c.subject AND o.seq < c.seq AND o.published_at IS NULL
             AND NOT EXISTS (SELECT 1 FROM claimed x WHERE x.id = o.id)
       ) AS waits{also}
FROM claimed c
ORDER BY c.seq"""

_CLAIM = """\
BEGIN;
WITH claimed AS MATERIALIZED (
    SELECT id, seq, source, type, subject, time, dataschema, data, traceparent, tracestate
    FROM outbox
    WHERE published_at IS NULL{which}
    ORDER BY seq{limit}
    FOR UPDATE SKIP LOCKED
)
""" + _CLAIMED_ROWS

# The immediate publish's claim: the rows of ``{ids}`` (a uuid[] literal), and ``unsynced``.
#
# ``unsynced``: the statement also turns ``synchronous_commit`` off for this transaction alone
# (``set_config(…, true)`` is SET LOCAL: it ends with the transaction, so the pooled connection's next
# writer commits synchronously again). The commit of the outcomes then does not wait for its WAL
# flush — the second flush every publishing request waited for after its writer's own. What a crash
# of PostgreSQL can lose is only this transaction: the marks ``published_at`` (and failed attempts),
# never the rows they mark — the writer's commit, which wrote the rows in the same transaction as its
# data, stays synchronous (its 2xx promises them durable), and its WAL precedes this one's. A lost
# mark leaves its row unpublished: the sweep sends it again with the same CloudEvent id, which the
# relay promises anyway (at least once; consumers dedupe on source and id). Taken per claimed row, in
# the same statement (no statement or round trip more); a claim of no rows locked nothing, so its
# COMMIT has nothing to flush. (The sweep's claim keeps its commit synchronous, as it always was.)
#
# The rows are found by primary key alone and the published ones dropped after the lock (``locked``,
# then ``claimed``): with ``published_at IS NULL`` beside the ids, PostgreSQL read the partial index
# ``ix_outbox_unpublished`` too (a BitmapAnd), whose entries for rows published since the last VACUUM
# it cannot skip — thousands per claim on a busy outbox. A row published meanwhile is locked (until
# this transaction ends) and not claimed, as before; the lock follows its newest version.
_CLAIM_COMMITTED = """\
BEGIN;
WITH locked AS MATERIALIZED (
    SELECT id, seq, source, type, subject, time, dataschema, data, traceparent, tracestate, published_at
    FROM outbox
    WHERE id = ANY({ids})
    ORDER BY seq
    FOR UPDATE SKIP LOCKED
), claimed AS MATERIALIZED (
    SELECT * FROM locked WHERE published_at IS NULL
)
""" + _CLAIMED_ROWS.replace("{also}", ",\n       set_config('synchronous_commit', 'off', true) AS unsynced")


def _claim_oldest(limit: int, *, ids: Collection[uuid.UUID] | None = None, exclude_ids: Iterable[uuid.UUID] = (),
                  exclude_subjects: Iterable[str] = ()) -> str:
    """The sweep's claim: the oldest ``limit`` unpublished rows (of ``ids`` when given), without the rows
    of ``exclude_ids`` and the rows of a subject in ``exclude_subjects`` (rows without a subject stay
    in). The values are written as literals (``_uuid_array``, ``_text_array``, an int)."""
    which = ""
    if ids is not None:
        which += f" AND id = ANY({_uuid_array(ids)})"
    exclude_ids = list(exclude_ids)
    if exclude_ids:
        which += f" AND id <> ALL({_uuid_array(exclude_ids)})"
    exclude_subjects = list(exclude_subjects)
    if exclude_subjects:
        which += f" AND (subject IS NULL OR subject <> ALL({_text_array(exclude_subjects)}))"
    return _CLAIM.format(which=which, limit=f"\n    LIMIT {int(limit)}", also="")


# One outcome per sent row (``{ids}`` uuid[], ``{errors}`` text[] literals): '' = accepted (marked
# published now), else the error code of a failed attempt; then COMMIT. Returns the ids of the rows
# marked published.
_RECORD_OUTCOMES = """\
WITH recorded AS (
    UPDATE outbox o
    SET published_at = CASE WHEN u.error = '' THEN now() END,
        attempts = o.attempts + 1,
        last_error = NULLIF(u.error, '')
    FROM unnest({ids}, {errors}) AS u(id, error)
    WHERE o.id = u.id AND o.published_at IS NULL
    RETURNING o.id, u.error
)
SELECT id FROM recorded WHERE error = '';
COMMIT"""


def _uuid_array(ids: Iterable[uuid.UUID | str]) -> str:
    """A uuid[] literal; every id is parsed as a UUID first, so only hex digits and hyphens get in."""
    return "'{" + ",".join(str(uuid.UUID(str(i))) for i in ids) + "}'::uuid[]"


def _text_array(values: Iterable[str]) -> str:
    """A text[] literal of escape-string constants (right whatever standard_conforming_strings says)."""
    quoted = ("E'" + v.replace("\x00", "").replace("\\", "\\\\").replace("'", "''") + "'" for v in values)
    return "ARRAY[" + ",".join(quoted) + "]::text[]"


def _publish_claimed(publisher: Publisher, ids: list[uuid.UUID], *, timeout: float, deadline: float) -> BatchResult:
    """The immediate publish of ``ids``: ``_publish_rows`` with the claim of those rows."""
    return _publish_rows(publisher, _CLAIM_COMMITTED.format(ids=_uuid_array(ids)), timeout=timeout, deadline=deadline)


def _publish_rows(publisher: Publisher, claim: str, *, timeout: float, deadline: float) -> BatchResult:
    """Claim rows (``claim``: a text of ``_CLAIM``), send those whose subject's older rows are all in the
    claim, record the outcomes and commit: two statements and two round trips. They go as simple
    queries (no parameters: pg8000 then sends one Query message instead of three exchanges, and each
    carries its BEGIN or COMMIT along), so the ids and error codes are written into the text as
    literals (``_uuid_array``, ``_text_array``). A publisher that raises leaves the transaction to the
    pool's rollback: nothing recorded, the rows unlocked."""
    result = BatchResult()
    with driver_connection() as con:  # autocommit: the statements carry BEGIN and COMMIT themselves
        rows = wire.rows_of(wire.simple(con, claim))
        result.claimed = len(rows)
        sendable = []
        for row in rows:
            if row.waits:
                result.deferred += 1
                result.blocked_subjects.add(row.subject)
                result.fates[row.id] = (DEFERRED, None, row.subject)
            else:
                sendable.append(row)
        if not sendable:
            wire.simple(con, "COMMIT")
            return result
        outcomes = publisher.publish_many([from_outbox_row(r) for r in sendable], timeout=timeout, deadline=deadline)
        sent_ids: list[uuid.UUID] = []
        errors: list[str] = []
        for row, outcome in zip(sendable, outcomes, strict=True):
            code = _tally(result, row, outcome)
            if code in NOT_ATTEMPTED:
                result.fates[row.id] = (DEFERRED, code, row.subject)
                continue
            result.fates[row.id] = (SENT, None, row.subject) if code is None else (FAILED, code, row.subject)
            sent_ids.append(row.id)
            errors.append(code or "")  # "" marks it published
        if not sent_ids:
            wire.simple(con, "COMMIT")
            return result
        recorded = wire.simple(con, _RECORD_OUTCOMES.format(ids=_uuid_array(sent_ids), errors=_text_array(errors)))
        for (row_id, *_rest) in recorded.rows or ():
            result.fates[row_id] = (PUBLISHED, None, result.fates[row_id][2])
            result.published += 1
    return result


def publish_committed(ids: list[uuid.UUID], *, publisher: Publisher | None = None, timeout: float | None = None) -> BatchResult | None:
    """Right after a commit: try to publish the rows it wrote. Never raises; on any failure the
    rows stay unpublished for the sweeper. Returns None when no sink is configured."""
    started = time.monotonic()
    try:
        from shared.settings import get_settings  # noqa: PLC0415

        publisher = publisher or publisher_from_settings()
        if publisher is None:
            return None
        budget = timeout if timeout is not None else get_settings().publish_timeout_seconds
        deadline = started + budget
        result = group_for(publisher).publish(
            ids, lambda round_ids: _publish_claimed(publisher, round_ids, timeout=budget, deadline=deadline), deadline)
        if result is None:  # waited for other requests' rounds past the deadline: the sweep's
            log.warning("events were left for the outbox sweep", extra={"fields": {"events": len(ids), "reason": "deadline"}})
            return BatchResult(deferred=len(ids))
    except Exception as exc:  # a publish problem must never fail the request that committed
        log.warning("immediate publish failed; the outbox sweep will retry",
                    extra={"fields": {"events": len(ids), "error_type": type(exc).__name__}})
        return None
    fields = {"events": len(ids), "published": result.published, "failed": result.failed, "deferred": result.deferred,
              "sink": publisher.name, "duration_ms": round((time.monotonic() - started) * 1000, 1)}
    if result.failed or result.deferred:
        log.warning("some events were left for the outbox sweep", extra={"fields": {**fields, "errors": result.errors}})
    else:
        log.debug("events published", extra={"fields": fields})
    return result
