"""The (MSH-4, MSH-10, content digest) claim that makes a LIS message apply once.

A message is applied by the transaction that inserts its claim into ``lis_control_ids``; the
primary key (facility, control id, digest) decides, so two copies of one message racing each
other have one effect (the second insert waits for the first transaction and then conflicts).

The digest (`shared.hl7.content_digest`) is what tells the two cases a reused MSH-10 stands for:

* the same content again (another Pub/Sub message id, other segment terminators or framing): a
  ``duplicate`` of the message that claimed it;
* different content (a test harness or a restarted interface reusing ``TEST-MSG-001``, a counter
  that wrapped): a message of its own, applied, with the warning ``control_id_reused:<id>``
  naming the earliest message claimed under that (MSH-4, MSH-10) — its ``lis_messages`` id, not
  its content.

Claims under one (MSH-4, MSH-10) are serialised by a transaction-level advisory lock, so the
second of two different messages sent at the same moment sees the first one's claim and warns.
Claims from before the digest was kept (``''``) get theirs from the claiming message's stored
bytes when their key is met again; when those bytes were purged the old claim cannot be
compared, and the new message is applied (with the warning) rather than dropped.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from shared.db.driver_uow import DriverUnitOfWork, NeedsOrm, run
from shared.instants import utcnow
from shared.lis.content import content_digest
from shared.lis.errors import ConcurrentChange
from shared.lis.sql import positional

if TYPE_CHECKING:
    import sqlalchemy as sa

    from shared.db import UnitOfWork

UNKNOWN_LEGACY = ""
# SQL text (``shared.lis.sql``), sent on either unit of work (``shared.db.driver_uow.run``).
_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))"
# One statement after the lock: the claims already made under (facility, control id), plus ours
# when no claim of the same content (or of unknown content) exists and our message row does — the
# fast path sends the claim in the same write as that row's insert (`claim_statement`), and a
# redelivery inserts no row (and takes no lock): its claim must then write nothing.
_CLAIM_CTES = """
existing AS (
    SELECT message_id, content_sha256, claimed_at FROM lis_control_ids
    WHERE sending_facility = :facility AND control_id = :control_id
), inserted AS (
    INSERT INTO lis_control_ids (sending_facility, control_id, content_sha256, message_id, claimed_at)
    SELECT :facility, :control_id, :digest, :message_id, :now
    WHERE NOT EXISTS (SELECT 1 FROM existing WHERE content_sha256 IN (:digest, ''))
      AND EXISTS (SELECT 1 FROM lis_messages WHERE id = :message_id)
    ON CONFLICT DO NOTHING
    RETURNING message_id
), claims AS (
    SELECT message_id, content_sha256, claimed_at, false AS mine FROM existing
    UNION ALL
    SELECT message_id, :digest, :now, true FROM inserted
)"""
_CLAIM = positional(f"WITH {_CLAIM_CTES} SELECT * FROM claims")
# The claim and the patient lookup (`shared.lis.patients.find_and_lock`'s rows, locked) in one
# statement, for the consumer's fast path: the claims as one JSON text in every row (read once, by
# the C JSON parser: pg8000 parses arrays character by character in Python, ~6 % of an ORU's CPU as
# four arrays), and one row without a patient when none holds the identifiers. Its snapshot follows
# the advisory lock, as the claim's does. The arrays are read through InitPlans (``(SELECT …)``): a
# custom plan then cannot see their lengths either, so both plans estimate the same rows and cost,
# and PostgreSQL keeps the prepared statement's generic plan from its sixth execution — with the
# arrays as plain parameters the generic plan's default of 10 identifiers looked dearer than a custom
# plan's 2, and every message planned this statement again (≈ 0.8–1.1 ms of the backend's CPU).
_CLAIM_AND_PATIENT = f"""WITH {_CLAIM_CTES}
SELECT c.claims, pat.*
FROM (SELECT CAST(json_agg(json_build_array(message_id, content_sha256, claimed_at, mine)) AS text) AS claims
      FROM claims) c
LEFT JOIN (
    SELECT p.*, i.system AS id_system, i.value AS id_value, s.field_stamps, s.field_sources
    FROM patient_identifiers i JOIN patients p ON p.id = i.patient_id
    LEFT JOIN lis_patient_sync s ON s.patient_id = p.id
    WHERE (i.system, i.value) IN (SELECT * FROM unnest((SELECT CAST(:systems AS text[])),
                                                       (SELECT CAST(:identifiers AS text[]))))
    ORDER BY p.id FOR UPDATE OF p
) pat ON true"""
_CLAIM_AND_PATIENT_SENT = positional(_CLAIM_AND_PATIENT)


@dataclass(frozen=True)
class Claim:
    duplicate_of: uuid.UUID | None = None  # the message that claimed the same content first
    reused_from: uuid.UUID | None = None  # the earliest message claimed under this MSH-10 with other content


def lock_clause(facility: sa.ColumnElement[str], control_id: sa.ColumnElement[str]) -> sa.ColumnElement[bool]:
    """The claim's advisory lock as an expression (for the RETURNING of the statement before the
    claim), on the key `claim` locks: ``lis-control-id:<facility>\\x1f<control id>``."""
    import sqlalchemy as sa  # noqa: PLC0415 — the careful path's

    key = sa.literal("lis-control-id:", sa.Text) + facility + sa.literal("\x1f", sa.Text) + control_id
    return sa.func.pg_advisory_xact_lock(sa.func.hashtextextended(key, 0)).is_(None).label("claim_locked")


def claim(uow: UnitOfWork, facility: str, control_id: str, digest: str, message_id: uuid.UUID, *,
          locked: bool = False, rows: list[_ClaimRow] | None = None) -> Claim:
    """Claim (facility, control id, digest) for `message_id`, inside the caller's savepoint
    (`locked`: the caller took the advisory lock already, see `lock_clause`; `rows`: the claim's
    statement ran already: `claimed`)."""
    if not locked:
        run(uow, _LOCK, (f"lis-control-id:{facility}\x1f{control_id}",))
    for _ in range(2):
        if rows is None:
            params = _params(facility, control_id, digest, message_id)
            rows = [_ClaimRow(*r) for r in run(uow, _CLAIM[0], [params[name] for name in _CLAIM[1]])]
        mine = [r for r in rows if r.mine]
        others = sorted((r for r in rows if not r.mine), key=lambda r: (r.claimed_at, str(r.message_id)))
        same = next((r.message_id for r in others if r.content_sha256 == digest), None)
        if same is not None:
            return Claim(duplicate_of=same)
        legacy = [r for r in others if r.content_sha256 == UNKNOWN_LEGACY]
        if legacy and not mine:
            _resolve_legacy(uow, facility, control_id, legacy[0].message_id)
            rows = None
            continue
        if not mine:
            raise ConcurrentChange("control_id_claim_not_taken")
        return Claim(reused_from=others[0].message_id if others else None)
    raise AssertionError("a legacy claim was resolved and is still unresolved")  # pragma: no cover


def claim_statement(facility: str, control_id: str, digest: str, message_id: uuid.UUID,
                    identifiers: list[tuple[str, str]] | None) -> tuple[str, list[Any]]:
    """The claim's statement and its values, to be sent after the advisory lock is taken (the fast path
    sends it in the same write as the row's insert whose RETURNING takes it): with `identifiers`, the
    claim and the patient rows holding any of them, locked FOR UPDATE (`shared.lis.patients.find_and_lock`'s
    rows) in one statement; read its answer with `claimed`."""
    params = _params(facility, control_id, digest, message_id)
    if identifiers is None:
        text, names = _CLAIM
    else:
        params.update(systems=[s for s, _ in identifiers], identifiers=[v for _, v in identifiers])
        text, names = _CLAIM_AND_PATIENT_SENT
    return text, [params[name] for name in names]


def claimed(uow: UnitOfWork, facility: str, control_id: str, digest: str, message_id: uuid.UUID, answer: list[Any],
            *, with_patient: bool) -> tuple[Claim, list[Any]]:
    """`claim` from the `answer` of `claim_statement` (the advisory lock taken already): (the claim, the
    patient rows when `with_patient`, else none)."""
    if with_patient:
        rows = [_ClaimRow(uuid.UUID(message_id_), digest_, datetime.fromisoformat(claimed_at), mine)
                for message_id_, digest_, claimed_at, mine in json.loads(answer[0].claims or "[]")]
        patients = [r for r in answer if r.id is not None]
    else:
        rows = [_ClaimRow(*r) for r in answer]
        patients = []
    return claim(uow, facility, control_id, digest, message_id, locked=True, rows=rows), patients


class _ClaimRow(NamedTuple):
    message_id: uuid.UUID
    content_sha256: str
    claimed_at: datetime
    mine: bool


def _params(facility: str, control_id: str, digest: str, message_id: uuid.UUID) -> dict[str, Any]:
    return {"facility": facility, "control_id": control_id, "digest": digest, "message_id": message_id,
            "now": utcnow()}


def _resolve_legacy(uow: UnitOfWork, facility: str, control_id: str, message_id: uuid.UUID) -> None:
    """Give a pre-digest claim the digest of its message's stored bytes (or an unmatchable one)."""
    if isinstance(uow, DriverUnitOfWork):
        raise NeedsOrm("a legacy claim")
    import sqlalchemy as sa  # noqa: PLC0415

    from shared.models import LisMessage  # noqa: PLC0415

    row = uow.session.execute(
        sa.select(LisMessage.raw, LisMessage.content_format).where(LisMessage.id == message_id)).first()
    if row is not None and row.raw is not None:
        digest = content_digest(row.raw, row.content_format)
    else:
        digest = "unknown:" + hashlib.sha256(str(message_id).encode()).hexdigest()
    uow.session.execute(
        sa.text("UPDATE lis_control_ids SET content_sha256 = :digest WHERE sending_facility = :facility "
                "AND control_id = :control_id AND content_sha256 = '' AND message_id = :message_id"),
        {"digest": digest, "facility": facility, "control_id": control_id, "message_id": message_id},
    )
