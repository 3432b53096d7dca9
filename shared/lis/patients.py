"""Which patient a LIS message is about, and its demographics — under a row lock.

Identity is by identifier only (PID-3 repetitions): the patient holding any of the message's
identifiers, following ``merged_into`` to the survivor. Identifiers pointing at two different
patients cannot be resolved by a machine: the message is quarantined (``identifier_conflict``)
until an operator merges or corrects the records and replays it. No identifier match creates a
new patient (source ``lis``) — never a merge on demographics; a probable duplicate is only
flagged for review by the registry's duplicate finder — on creation and on every change of the
fields it reads (``services.duplicate_flags``).

Demographics follow the newest writer per field (see `shared.lis.ordering`); a field last changed
through the API keeps its value until a message written after the edit arrives (warning
``api_edit_newer:<field>``), and ``lis_patient_sync.field_sources`` records which side wrote it.

Races are settled by constraints: two messages creating the same new patient both insert their
identifiers; the unique (system, value) index makes the second wait and then fail, which raises
`ConcurrentChange` so the whole delivery is retried and finds the first one's patient.
"""

from __future__ import annotations

import functools
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from shared import auth
from shared.db.driver_uow import DriverUnitOfWork, NeedsOrm, run
from shared.errors import Conflict, DuplicateIdentifier
from shared.hl7.model import Identifier
from shared.ids import uuid4
from shared.instants import utcnow
from shared.lis import sql
from shared.lis.errors import ConcurrentChange, Quarantine
from shared.lis.ordering import merge_fields, stamp_time
from shared.lis.outcome import MessageContext
from shared.lis.pending import Pending
from shared.lis.values import Warnings, clean, current_demographics, patient_columns, safe_text
from shared.log import current_request_id
from shared.mrn import MRN_SYSTEM, luhn_check_digit
from shared.prepared import PREPARED
from shared.services import provenance
from shared.services.duplicates import lock_key
from shared.services.name_index import name_tokens

if TYPE_CHECKING:
    import sqlalchemy as sa

    from shared.db import UnitOfWork

_MAX_MERGE_HOPS = 20  # as the registry's MAX_CHAIN


def _on_the_orm(uow: Any, step: str) -> None:
    """Raise `NeedsOrm` on the driver pool's unit of work: `step` runs on the ORM's."""
    if isinstance(uow, DriverUnitOfWork):
        raise NeedsOrm(step)


def identifier_keys(identifiers: tuple[Identifier, ...], warnings: Warnings) -> list[tuple[str, str, str | None]]:
    """(system, value, type) of the message's identifiers, de-duplicated, in message order."""
    keys: dict[tuple[str, str], str | None] = {}
    for ident in identifiers:
        value = safe_text(ident.value or "").strip()
        system = safe_text(ident.system or "").strip() or "LIS"
        if not value:
            continue
        if len(value) > 200 or len(system) > 200:
            raise Quarantine("invalid_field:PID-3")
        keys.setdefault((system, value), clean(ident.type, 64, warnings, "PID-3.5"))
    return [(system, value, id_type) for (system, value), id_type in keys.items()]


# The registry's patient and merge services (their API schemas, e-mail validation: ~40 ms at a cold start)
# are imported by the functions below that change an existing patient, follow a merge or claim
# identifiers one by one; a message that creates a patient on the fast path, or only adds results to
# a known one, does not load them.


def survivor(uow: UnitOfWork, patient_id: uuid.UUID) -> uuid.UUID:
    _on_the_orm(uow, "a merge to follow")
    from shared.services.merge import resolve_merged  # noqa: PLC0415 - see above

    try:
        return resolve_merged(uow, patient_id)
    except Conflict:
        raise Quarantine("merge_chain_too_long") from None


def find_patient(uow: UnitOfWork, keys: list[tuple[str, str, str | None]]) -> tuple[uuid.UUID | None, set[tuple[str, str]]]:
    """(the surviving patient holding any of `keys` or None, the keys already held by it)."""
    if not keys:
        return None, set()
    _on_the_orm(uow, "a merge")
    import sqlalchemy as sa  # noqa: PLC0415 — merges (the ORM's unit of work)

    from shared.models import Patient, PatientIdentifier  # noqa: PLC0415

    rows = uow.session.execute(
        sa.select(PatientIdentifier.system, PatientIdentifier.value, PatientIdentifier.patient_id, Patient.merged_into)
        .join(Patient, Patient.id == PatientIdentifier.patient_id)
        .where(sa.tuple_(PatientIdentifier.system, PatientIdentifier.value).in_([(s, v) for s, v, _ in keys]))
    ).all()
    survivors: dict[tuple[str, str], uuid.UUID] = {}
    for row in rows:
        owner = row.patient_id if row.merged_into is None else survivor(uow, row.merged_into)
        survivors[(row.system, row.value)] = owner
    distinct = set(survivors.values())
    if len(distinct) > 1:
        raise Quarantine("identifier_conflict")
    if not distinct:
        return None, set()
    return distinct.pop(), set(survivors)


@dataclass(frozen=True)
class Found:
    row: Any  # the surviving patient's row, locked FOR UPDATE
    held: set[tuple[str, str]]  # which of the message's identifiers it already holds
    stamps: dict[str, Any]  # its per-field demographic stamps
    sources: dict[str, Any]  # who set each field last


@functools.cache
def _find_and_lock() -> sa.Select[Any]:
    """Built once (SQLAlchemy keeps its cache key and compiled SQL); the keys are an expanding IN."""
    import sqlalchemy as sa  # noqa: PLC0415

    from shared.models import LisPatientSync, Patient, PatientIdentifier  # noqa: PLC0415

    p, i, sync = Patient.__table__, PatientIdentifier.__table__, LisPatientSync.__table__
    return (
        sa.select(p, i.c.system.label("id_system"), i.c.value.label("id_value"), sync.c.field_stamps, sync.c.field_sources)
        .select_from(i.join(p, p.c.id == i.c.patient_id).outerjoin(sync, sync.c.patient_id == p.c.id))
        .where(sa.tuple_(i.c.system, i.c.value).in_(sa.bindparam("keys", expanding=True)))
        .order_by(p.c.id)
        .with_for_update(of=p)
    )


def find_and_lock(uow: UnitOfWork, keys: list[tuple[str, str, str | None]],
                  prefetched: tuple[tuple[tuple[str, str], ...], list[Any]] | None = None) -> Found | None:
    """The patient holding any of `keys`, locked, with its stamps — one round trip in the usual case.

    Every patient row the identifiers name is locked (in id order, so concurrent messages cannot
    deadlock on them); identifiers naming two different surviving patients quarantine the message.
    `prefetched`: (keys, rows) of this lookup made already, with the claim (``claims.claim_statement``).
    """
    if not keys:
        return None
    pairs = tuple((system, value) for system, value, _ in keys)
    if prefetched is not None and prefetched[0] == pairs:
        rows = prefetched[1]
    else:
        rows = uow.session.execute(_find_and_lock(), {"keys": list(pairs)}, execution_options=PREPARED).all()
    if not rows:
        return None
    if all(r.merged_into is None for r in rows) and len({r.id for r in rows}) == 1:
        return Found(rows[0], {(r.id_system, r.id_value) for r in rows}, rows[0].field_stamps or {},
                     rows[0].field_sources or {})
    # Merged patients in the way (rare): resolve each to its survivor, then lock that one.
    _on_the_orm(uow, "a merge to follow")
    import sqlalchemy as sa  # noqa: PLC0415

    from shared.models import LisPatientSync  # noqa: PLC0415

    sync = LisPatientSync.__table__
    owners = {r.id if r.merged_into is None else survivor(uow, r.merged_into) for r in rows}
    if len(owners) > 1:
        raise Quarantine("identifier_conflict")
    row = lock_patient(uow, owners.pop())
    sync_row = uow.session.execute(
        sa.select(sync.c.field_stamps, sync.c.field_sources).where(sync.c.patient_id == row.id)).first()
    return Found(row, {(r.id_system, r.id_value) for r in rows}, (sync_row.field_stamps if sync_row else None) or {},
                 (sync_row.field_sources if sync_row else None) or {})


def lock_patient(uow: UnitOfWork, patient_id: uuid.UUID) -> Any:
    """The patient row, locked FOR UPDATE; follows a merge that happened since it was found."""
    _on_the_orm(uow, "a patient by id")
    import sqlalchemy as sa  # noqa: PLC0415

    from shared.models import Patient  # noqa: PLC0415

    for _ in range(_MAX_MERGE_HOPS):
        row = uow.session.execute(sa.select(Patient.__table__).where(Patient.id == patient_id).with_for_update()).first()
        if row is None:
            raise ConcurrentChange("patient_vanished")
        if row.merged_into is None:
            return row
        patient_id = row.merged_into
    raise Quarantine("merge_chain_too_long")


@dataclass(frozen=True)
class Created:
    patient_id: uuid.UUID
    probable_duplicates: int


def create_patient(uow: UnitOfWork, keys: list[tuple[str, str, str | None]], fields: dict[str, Any],
                   ctx: MessageContext) -> Created:
    """A new patient (source ``lis``) with the message's identifiers and usable demographics."""
    if ctx.pending is not None:
        return _create_pending(uow, keys, fields, ctx, ctx.pending)
    import sqlalchemy as sa  # noqa: PLC0415 — the careful path's

    from shared.events import catalog  # noqa: PLC0415
    from shared.events.outbox import emit  # noqa: PLC0415
    from shared.models import LisPatientSync, Patient  # noqa: PLC0415
    from shared.mrn import next_mrn  # noqa: PLC0415
    from shared.services.name_index import index_names  # noqa: PLC0415

    stamp = ctx.stamp
    now = utcnow()
    patient_id = uuid4()
    mrn = next_mrn(uow)
    present = {k: v for k, v in fields.items() if v is not None}
    columns = _columns(present)
    uow.session.execute(sa.insert(Patient.__table__).values(_row(patient_id, mrn, columns, ctx, now)))
    from shared.services.patients import claim_identifiers  # noqa: PLC0415 - see survivor

    try:
        claim_identifiers(uow, patient_id, [(MRN_SYSTEM, mrn, "MR"), *keys])
    except DuplicateIdentifier:
        raise ConcurrentChange("identifier_claimed_concurrently") from None
    sources = provenance.lis_sources(list(present), stamp, ctx.message_id)
    uow.session.execute(
        sa.insert(LisPatientSync.__table__).values(patient_id=patient_id, field_stamps={k: list(stamp) for k in present},
                                                   field_sources=sources, updated_at=now)
    )
    index_names(uow, patient_id, columns["family"], columns["given"])
    _record_version(uow, patient_id, "lis-create", sources)
    emit(uow, catalog.LIS_PATIENT_CREATED, patient_id,
         catalog.PatientRegistered(patient_id=patient_id, version=1, origin="lis"))
    return Created(patient_id, probable_duplicates(uow, patient_id, columns))


def _columns(present: dict[str, Any]) -> dict[str, Any]:
    return {
        "family": "", "given": [], "prefix": [], "suffix": [], "family_norm": "", "first_given_norm": "",
        "birth_date": None, "sex": "unknown", "phone": None, "email": None, "address": None,
        **patient_columns(present),
    }


def _row(patient_id: uuid.UUID, mrn: str, columns: dict[str, Any], ctx: MessageContext, now: Any) -> dict[str, Any]:
    """A new LIS patient's `patients` row."""
    return {"id": patient_id, "mrn": mrn, "status": "active", "preferred_language": None, "timezone": "UTC",
            "comm_email": False, "comm_sms": False, "source": "lis", "lis_applied_at": stamp_time(ctx.stamp),
            "lis_applied_control_id": ctx.control_id[:64], "version": 1, "created_at": now, "updated_at": now,
            **columns}


def _create_pending(uow: UnitOfWork, keys: list[tuple[str, str, str | None]], fields: dict[str, Any],
                    ctx: MessageContext, pending: Pending) -> Created:
    """`create_patient` on the consumer's fast path: the same rows, sent with the message's last
    statement (SQL text, ``shared.lis.sql``). Read first: the MRN's number (with the birth date's
    duplicate lock, which ``lock_birth_date`` would take) and the probable duplicates; the rest is
    written, not read — the version's snapshot is the row as inserted. A probable duplicate (rare) is
    flagged by the registry's own `flag_duplicates` once the patient is written, on the ORM's unit of
    work (on the driver pool's, the message runs again there)."""
    from shared.events import catalog  # noqa: PLC0415 — pydantic, not SQLAlchemy

    now = utcnow()
    patient_id = uuid4()
    present = {k: v for k, v in fields.items() if v is not None}
    columns = _columns(present)
    birth_date = columns["birth_date"]
    if birth_date is not None:  # the key of shared.services.duplicates.lock_birth_date
        [read] = run(uow, sql.MRN_NUMBER_LOCKED, (lock_key(birth_date),))
    else:
        [read] = run(uow, sql.MRN_NUMBER, ())
    base = str(read.number)
    mrn = base + luhn_check_digit(base)
    found = _probable_duplicates(uow, columns, patient_id) if birth_date else []
    if found:
        _on_the_orm(uow, "a probable duplicate to flag")
    row = _row(patient_id, mrn, columns, ctx, now)
    pending.add(sql.INSERT_PATIENT, tuple(json.dumps(row[c]) if c == "address" else row[c] for c in sql.PATIENT_COLUMNS))
    identifiers = [(MRN_SYSTEM, mrn, "MR"), *keys]
    _queue_identifiers(pending, patient_id, identifiers, now)
    sources = provenance.lis_sources(list(present), ctx.stamp, ctx.message_id)
    pending.add(sql.INSERT_SYNC, (patient_id, json.dumps({k: list(ctx.stamp) for k in present}), json.dumps(sources), now))
    # `index_names`'s rows (a new patient has none to replace), as one JSON parameter.
    tokens = sorted(name_tokens(columns["family"], columns["given"]))
    if tokens:
        pending.insert_rows("patient_name_tokens", [
            {"patient_id": patient_id, "kind": kind, "token": token} for kind, token in tokens])
    # `versions.record_new_patient`: the first version, its snapshot the document as inserted.
    pending.add(sql.INSERT_FIRST_VERSION, (
        patient_id, patient_id, "lis-create", json.dumps(patient_document(row, identifiers)), utcnow(),
        auth.SYSTEM_LIS.name, current_request_id(), json.dumps(sources)))
    pending.emit(uow, catalog.LIS_PATIENT_CREATED, patient_id,
                 catalog.PatientRegistered(patient_id=patient_id, version=1, origin="lis"))
    if not found:
        return Created(patient_id, 0)
    from shared.services.duplicate_flags import flag_duplicates  # noqa: PLC0415 — the ORM's unit of work

    pending.flush(uow)
    return Created(patient_id, len(flag_duplicates(uow, auth.SYSTEM_LIS, patient_id, origin="lis")))


def _queue_identifiers(pending: Pending, patient_id: uuid.UUID, keys: list[tuple[str, str, str | None]],
                       now: datetime) -> None:
    """The registry's `claim_identifiers` rows, with the message's last statement: the unique (system,
    value) constraint decides a race, lost as `ConcurrentChange`."""
    pending.insert_rows("patient_identifiers", [
        {"id": uuid4(), "patient_id": patient_id, "system": system, "value": value, "type": id_type, "created_at": now}
        for system, value, id_type in keys], conflict=("system", "value"), reason="identifier_claimed_concurrently")


def _probable_duplicates(uow: UnitOfWork, columns: dict[str, Any], patient_id: uuid.UUID) -> list[Any]:
    """``services.duplicates.find_duplicates`` of the new patient's columns (its birth date given), as
    SQL text: (id, reason) rows."""
    from shared.services.duplicates import applicable, probe_values  # noqa: PLC0415 — pure

    values: dict[str, Any] = probe_values(columns["family"], columns["given"], columns["phone"], columns["email"])
    rules = applicable(values)
    if not rules:
        return []
    text, names = sql.probable_duplicates(tuple(rule.reason for rule in rules))
    values.update(birth_date=columns["birth_date"], exclude=patient_id)
    return run(uow, text, [values[name] for name in names], pipelined=True)  # planned for its values, as there


def _instant(value: datetime) -> str:
    """An aware datetime as pydantic writes it in JSON mode (UTC as ``Z``)."""
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def patient_document(row: dict[str, Any], identifiers: list[tuple[str, str, str | None]]) -> dict[str, Any]:
    """The Patient resource of a new LIS patient (its `_row` and identifiers) as JSON: what
    ``services.patients.to_resource(…).model_dump(mode="json")`` gives, key for key, without loading the
    API's schemas on the LIS's first new patient (tests/unit/lis/test_patient_document.py compares both)."""
    address = row["address"]
    return {
        "id": str(row["id"]), "mrn": row["mrn"], "status": row["status"], "merged_into": None,
        "name": {"family": row["family"], "given": list(row["given"]), "prefix": list(row["prefix"]),
                 "suffix": list(row["suffix"])},
        "birth_date": row["birth_date"].isoformat() if row["birth_date"] is not None else None,
        "sex": row["sex"],
        "identifiers": [{"system": system, "value": value, "type": id_type} for system, value, id_type in identifiers],
        "phone": row["phone"], "email": row["email"],
        "address": None if address is None else {
            "line": list(address.get("line", [])), "city": address.get("city"), "state": address.get("state"),
            "postal_code": address.get("postal_code"), "country": address.get("country")},
        "preferred_language": row["preferred_language"], "timezone": row["timezone"],
        "communication": {"email": row["comm_email"], "sms": row["comm_sms"]},
        "version": row["version"], "created_at": _instant(row["created_at"]), "updated_at": _instant(row["updated_at"]),
    }


def _record_version(uow: UnitOfWork, patient_id: uuid.UUID, change: str, sources: dict[str, Any]) -> None:
    """Keep every version of the patient, as the registry does for its own writes (GET …/versions)."""
    from shared.services import versions  # noqa: PLC0415 - the careful path's
    from shared.services.patients import load_patient, to_resource  # noqa: PLC0415 - see survivor

    patient = load_patient(uow, patient_id, fresh=True)
    versions.record(uow, auth.SYSTEM_LIS, "patient", to_resource(patient), change, field_sources=sources)


def add_identifiers(uow: UnitOfWork, patient_id: uuid.UUID, keys: list[tuple[str, str, str | None]],
                    pending: Pending | None = None) -> int:
    """Attach `keys` to the patient (the registry's `claim_identifiers`: the unique (system, value)
    constraint decides a race, lost as `ConcurrentChange`)."""
    if not keys:
        return 0
    if pending is not None and isinstance(uow, DriverUnitOfWork):
        # Queued only on the driver pool's unit of work, where every later step that reads identifiers
        # (a changed patient's version, a merge) declines first; on the ORM's they are written at once.
        _queue_identifiers(pending, patient_id, keys, utcnow())
        return len(keys)
    from shared.services.patients import claim_identifiers  # noqa: PLC0415 - see survivor

    try:
        claim_identifiers(uow, patient_id, keys)
    except DuplicateIdentifier:
        raise ConcurrentChange("identifier_claimed_concurrently") from None
    return len(keys)


def update_demographics(uow: UnitOfWork, row: Any, found: Found, fields: dict[str, Any], ctx: MessageContext,
                        warnings: Warnings) -> list[str]:
    """Write the fields this message is the newest source of; returns the names that changed."""
    stamp = ctx.stamp
    changes, new_stamps = merge_fields(current_demographics(row), found.stamps, fields, stamp)
    for name, value in fields.items():
        if value is not None and name not in new_stamps and provenance.is_api_stamp(found.stamps.get(name)):
            warnings.add(f"api_edit_newer:{name}")
    now = utcnow()
    newest = stamp_time(stamp)
    values: dict[str, Any] = patient_columns(changes)
    if row.lis_applied_at is None or newest > row.lis_applied_at:
        values.update(lis_applied_at=newest, lis_applied_control_id=ctx.control_id[:64])
    if not values and not changes and not new_stamps:
        return []
    written = provenance.lis_sources(list(new_stamps), stamp, ctx.message_id)
    if ctx.pending is not None and not changes:
        # Only stamps move (the values are the same): nothing reads them before the message's
        # last statement, which carries both writes.
        if values:
            ctx.pending.add(sql.LIS_APPLIED, (values["lis_applied_at"], values["lis_applied_control_id"], row.id))
        if new_stamps:
            ctx.pending.add(sql.STAMPS, (row.id, json.dumps(new_stamps), json.dumps(written), now))
        return []
    _on_the_orm(uow, "the patient's demographics change")
    import sqlalchemy as sa  # noqa: PLC0415

    from shared.events import catalog  # noqa: PLC0415
    from shared.events.outbox import emit  # noqa: PLC0415
    from shared.models import Patient  # noqa: PLC0415
    from shared.services.duplicate_flags import flag_duplicates, touches_matching_fields  # noqa: PLC0415
    from shared.services.name_index import index_names  # noqa: PLC0415

    _PATIENTS = Patient.__table__  # noqa: N806
    if changes:
        values.update(updated_at=now, version=_PATIENTS.c.version + 1)
    # One round trip: the stamps upsert rides along as a CTE of the patient update.
    update = sa.update(_PATIENTS).where(_PATIENTS.c.id == row.id).values(**(values or {"id": row.id}))
    if new_stamps:
        update = update.add_cte(provenance.sync_upsert(row.id, new_stamps, written, now).cte("stamps"))
    version = uow.session.execute(update.returning(_PATIENTS.c.version)).scalar_one()
    if "name" in changes:
        index_names(uow, row.id, changes["name"]["family"], changes["name"]["given"])
    if changes:
        _record_version(uow, row.id, "lis-update", {**found.sources, **written})
        emit(uow, catalog.LIS_PATIENT_UPDATED, row.id,
             catalog.PatientUpdated(patient_id=row.id, version=version, changed=sorted(changes)))
        if touches_matching_fields(changes):
            flag_duplicates(uow, auth.SYSTEM_LIS, row.id, origin="lis")
    return sorted(changes)


def probable_duplicates(uow: UnitOfWork, patient_id: uuid.UUID, columns: dict[str, Any]) -> int:
    """How many existing patients a new LIS patient probably duplicates (the registry's rules).

    Nothing is merged: each pair is flagged for review (``services.duplicate_flags``, listed at
    ``GET /patients/{id}/duplicates``), and the message carries a ``probable_duplicate`` warning.
    """
    if columns.get("birth_date") is None:
        return 0  # every duplicate rule needs the birth date
    from shared.services.duplicate_flags import flag_duplicates  # noqa: PLC0415 - the careful path's
    return len(flag_duplicates(uow, auth.SYSTEM_LIS, patient_id, origin="lis"))
