"""Results (OBX) from one message: every version kept, the current one chosen by rule.

A result of an order is identified within it by ``result_key``: the OBX-3 code (system|code), its
OBX-4 sub-id when sent (``|sub:<OBX-4>``: isolate 1 and isolate 2 of a culture are two results), and
its occurrence among OBX with that code and sub-id in the message (``#1``, ``#2`` …), or the OBX-1
set id / position when OBX-3 is empty. A patient-level observation (no order) is identified within
the patient by the same key plus its effective time (``@<OBX-14>``, else ``@<MSH-7>``): a height
measured on two days is two observations, a correction of one carries its OBX-14.

A later message about the same observation adds a *version*; the current version (the row's
columns) is the highest by (status class, stamp) — preliminary < final < corrected — and all the
others stay in ``previous_versions`` oldest first. So a final result never returns to preliminary,
a correction replaces the value while the corrected value is kept, and the outcome does not depend
on the order of arrival. The same message applied again (a replay of a message some of whose
patient groups were applied) adds no version.

The order row (or, for patient-level observations, the patient row) is locked by the caller,
which serialises every writer of these results.
"""

from __future__ import annotations

import functools
import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from shared.db.driver_uow import run
from shared.hl7.model import ResultData
from shared.ids import uuid4
from shared.instants import utcnow
from shared.lis import sql
from shared.lis.errors import ConcurrentChange
from shared.lis.ordering import Stamp, available_status, current_version, stamp_time
from shared.lis.pending import Pending
from shared.lis.values import Warnings, clean, safe_text

if TYPE_CHECKING:
    from shared.db import UnitOfWork

_KEY_MAX = 400


@functools.cache
def _insert() -> Any:
    """The careful path's multi-row INSERT (SQLAlchemy, loaded with its first use)."""
    from sqlalchemy.dialects.postgresql import insert as pg_insert  # noqa: PLC0415

    from shared.models import LabResult  # noqa: PLC0415

    table = LabResult.__table__
    return pg_insert(table).on_conflict_do_nothing().returning(table.c.id)
# What a reader of the result sees change (a re-sent identical result is not news).
_CONTENT = ("status", "value", "values", "value_type", "units", "reference_range", "abnormal_flags", "observed_at", "notes")


def result_keys(results: tuple[ResultData, ...], suffix: list[str] | None = None) -> list[str]:
    keys: list[str] = []
    seen: dict[str, int] = {}
    for index, result in enumerate(results):
        if result.code.code or result.code.display:
            base = f"{result.code.system or ''}|{result.code.code or ''}|{'' if result.code.code else result.code.display}"
        elif result.set_id:
            base = f"set:{result.set_id}"
        else:
            base = f"pos:{index + 1}"
        if result.sub_id:
            base += f"|sub:{result.sub_id}"
        if suffix is not None:
            base += suffix[index]
        seen[base] = seen.get(base, 0) + 1
        key = safe_text(f"{base}#{seen[base]}")
        if len(key) > _KEY_MAX:
            key = "sha256:" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
        keys.append(key)
    return keys


def observation_keys(observations: tuple[ResultData, ...], stamp: Stamp) -> list[str]:
    """Keys of patient-level observations: the result key plus the effective time."""
    fallback = stamp[0]
    return result_keys(observations, [f"@{o.observed_at.isoformat() if o.observed_at else fallback}"
                                      for o in observations])


def version_of(result: ResultData, stamp: Stamp, message_id: uuid.UUID, warnings: Warnings) -> dict[str, Any]:
    """One OBX as a JSON version (the shape of ``previous_versions`` entries)."""
    values = [v for v in (clean(x, 20000, warnings, "OBX-5") for x in result.values) if v]
    value = clean(result.value, 100000, warnings, "OBX-5")
    if len(values) > 1 and result.value_type not in ("TX", "FT"):
        value = "\n".join(values)  # every repetition stays visible in `value`
    return {
        "stamp": list(stamp),
        "message_id": str(message_id),
        "status": clean(result.status, 8, warnings, "OBX-11"),
        "value": value,
        "values": values,
        "value_type": clean(result.value_type, 8, warnings, "OBX-2"),
        "units": clean(result.units, 100, warnings, "OBX-6"),
        "reference_range": clean(result.reference_range, 200, warnings, "OBX-7"),
        "abnormal_flags": [f for f in (clean(x, 20, warnings, "OBX-8") for x in result.abnormal_flags) if f],
        "observed_at": result.observed_at.isoformat() if result.observed_at else None,
        "observed_text": result.observed_text,  # as sent: its precision and offset (FHIR effectiveDateTime)
        "notes": [safe_text(n) for n in result.notes if n is not None],
        "code_system": clean(result.code.system, 200, warnings, "OBX-3.3"),
        "code": clean(result.code.code, 100, warnings, "OBX-3.1"),
        "code_display": clean(result.code.display, 300, warnings, "OBX-3.2"),
    }


def _row_version(row: Any) -> dict[str, Any]:
    return {
        "stamp": row.lis_stamp or ["", "", ""],
        "message_id": str(row.lis_message_id) if row.lis_message_id else None,
        "status": row.status,
        "value": row.value,
        "values": list(row.values or []),
        "value_type": row.value_type,
        "units": row.units,
        "reference_range": row.reference_range,
        "abnormal_flags": list(row.abnormal_flags or []),
        "observed_at": row.observed_at.isoformat() if row.observed_at else None,
        "observed_text": row.observed_text,
        "notes": list(row.notes or []),
        "code_system": row.code_system,
        "code": row.code,
        "code_display": row.code_display,
    }


def _columns(version: dict[str, Any], *, as_text: bool = False) -> dict[str, Any]:
    """The result columns of a version. `as_text`: the timestamps and the message id as the JSON of a
    pending insert sends them (their ISO text, as the version holds it), not parsed into objects that
    the encoder would only turn back into text."""
    observed, message_id = version["observed_at"], version["message_id"]
    applied = stamp_time(tuple(version["stamp"])) if version["stamp"][0] else None
    return {
        "status": version["status"], "value": version["value"], "values": version["values"],
        "value_type": version["value_type"], "units": version["units"], "reference_range": version["reference_range"],
        "abnormal_flags": version["abnormal_flags"],
        "observed_at": (observed if as_text else datetime.fromisoformat(observed)) if observed else None,
        "observed_text": version.get("observed_text"),  # versions stored before migration 0015 have none
        "notes": version["notes"], "code_system": version["code_system"], "code": version["code"],
        "code_display": version["code_display"], "lis_stamp": version["stamp"],
        "lis_message_id": (message_id if as_text else uuid.UUID(message_id)) if message_id else None,
        "lis_applied_at": applied.isoformat() if as_text and applied is not None else applied,
    }


@dataclass
class ResultsOutcome:
    recorded: int = 0
    available: dict[str, list[uuid.UUID]] = field(default_factory=lambda: {"final": [], "corrected": []})


def record_results(
    uow: UnitOfWork, patient_id: uuid.UUID, order_id: uuid.UUID | None, results: tuple[ResultData, ...],
    stamp: Stamp, message_id: uuid.UUID, warnings: Warnings, *, new_order: bool = False,
    keys: list[str] | None = None, pending: Pending | None = None,
) -> ResultsOutcome:
    """Record `results` of the order `order_id`, or — `order_id` None — observations of the patient
    (pass their `observation_keys`); with `pending`, the writes wait for the message's last statement."""
    outcome = ResultsOutcome()
    if not results:
        return outcome
    keys = keys if keys is not None else result_keys(results)
    # Nothing pending can be read here: `apply_order` flushed before locking this order, and what
    # it queued since is the order's own row (results of another order, or of none, are not these).
    existing = {} if new_order else _existing(uow, patient_id, order_id, keys)
    now = utcnow()
    new_rows: list[dict[str, Any]] = []
    # A pending insert's rows travel as JSON: the ids and times every row shares are written as text once
    # here, not converted by the encoder's fallback for each row (an ORU's eight rows, built and encoded:
    # 131 → 81 µs).
    text = pending is not None
    common = ({"order_id": str(order_id) if order_id else None, "patient_id": str(patient_id), "created_at": now.isoformat(),
               "updated_at": now.isoformat()} if text else
              {"order_id": order_id, "patient_id": patient_id, "created_at": now, "updated_at": now})
    for key, result in zip(keys, results, strict=True):
        incoming = version_of(result, stamp, message_id, warnings)
        row = existing.get(key)
        if row is None:
            result_id = uuid4()
            new_rows.append({"id": str(result_id) if text else result_id, **common, "result_key": key,
                             "sub_id": clean(result.sub_id, 64, warnings, "OBX-4"),
                             "previous_versions": [], "version": 1, **_columns(incoming, as_text=text)})
            before, current = None, incoming
        else:
            result_id = row.id
            before = _row_version(row)
            if any(_same_message(v, incoming) for v in [*(row.previous_versions or []), before]):
                continue  # this message was applied to this result already
            current, others = current_version([*(row.previous_versions or []), before, incoming])
            values: dict[str, Any] = {"previous_versions": others, "version": len(others) + 1, "updated_at": now,
                                      "patient_id": patient_id}
            if current is incoming:
                values.update(_columns(incoming))
            if pending is not None:
                pending.update_row("lab_results", row.id, values, bump_version=False)
            else:
                import sqlalchemy as sa  # noqa: PLC0415 — the careful path's

                from shared.models import LabResult  # noqa: PLC0415

                table = LabResult.__table__
                uow.session.execute(sa.update(table).where(table.c.id == row.id).values(**values))
        outcome.recorded += 1
        if current is incoming and (before is None or _content(before) != _content(incoming)):
            announced = available_status(incoming["status"])
            if announced:
                outcome.available[announced].append(result_id)
    if new_rows and pending is not None:
        # One multi-row INSERT, sent with the message's last statement.
        pending.insert_rows("lab_results", new_rows, reason="result_created_concurrently")
    elif new_rows:
        # executemany: one cached statement, sent as one multi-row INSERT (SQLAlchemy's insertmanyvalues).
        inserted = uow.session.execute(_insert(), new_rows).all()
        if len(inserted) != len(new_rows):
            raise ConcurrentChange("result_created_concurrently")
    return outcome


def _existing(uow: UnitOfWork, patient_id: uuid.UUID, order_id: uuid.UUID | None, keys: list[str]) -> dict[str, Any]:
    """The stored results of the order (or the patient's observations, `order_id` None) by key (SQL
    text, ``shared.lis.sql``, on either unit of work)."""
    if order_id is not None:
        rows = run(uow, sql.ORDER_RESULTS, (order_id, list(keys)))
    else:
        rows = run(uow, sql.PATIENT_OBSERVATIONS, (patient_id, list(keys)))
    return {row.result_key: row for row in rows}


def _same_message(version: dict[str, Any], incoming: dict[str, Any]) -> bool:
    return version.get("message_id") == incoming["message_id"] and list(version.get("stamp") or []) == incoming["stamp"]


def _content(version: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(str(version.get(k)) for k in _CONTENT)
