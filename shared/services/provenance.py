"""Which side set each demographic field of a patient last: the LIS feed or the API.

Both sides write the same per-field record, ``lis_patient_sync``: ``field_stamps`` orders the
writes and ``field_sources`` says who made the last one. A LIS message writes a field only when its
stamp — (MSH-7 in UTC, MSH-10 sort key, MSH-4) — is newer than the field's stamp. An API edit
stamps the fields it changed with (edit time, ``API_MARK``, ``""``): ``API_MARK`` sorts after
every MSH-10 key, so a LIS message written at the very instant of the edit does not undo it, and
one written later (MSH-7 after the edit) does. Registering a patient through the API stamps
nothing: the registration is not an edit of data the LIS sent.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.dialects.postgresql import Insert

    from shared.db import UnitOfWork

# The demographic fields both sides write (the LIS mapping's names, the API resource's members).
DEMOGRAPHIC_FIELDS = ("name", "birth_date", "sex", "address", "phone", "email")
API_MARK = "~api"


def _sync() -> Any:
    """The ``lis_patient_sync`` table (SQLAlchemy loads with the first statement built, not on import:
    the LIS fast path reads the pure functions here only)."""
    from shared.models import LisPatientSync  # noqa: PLC0415

    return LisPatientSync.__table__


def stamp_text(when: datetime) -> str:
    """An instant as a stamp's first element: ISO 8601 in UTC with microseconds (sorts as text)."""
    w = when.astimezone(timezone.utc) if when.tzinfo else when.replace(tzinfo=timezone.utc)
    return f"{w.year:04d}-{w.month:02d}-{w.day:02d}T{w.hour:02d}:{w.minute:02d}:{w.second:02d}.{w.microsecond:06d}Z"


def is_api_stamp(stamp: Any) -> bool:
    return isinstance(stamp, (list, tuple)) and len(stamp) == 3 and stamp[1] == API_MARK


def sync_upsert(patient_id: uuid.UUID, stamps: dict[str, list[str]], sources: dict[str, Any], now: datetime) -> Insert:
    """The statement merging `stamps` and `sources` into the patient's record (not executed: the
    LIS consumer sends it as a CTE of its patient update)."""
    from sqlalchemy.dialects.postgresql import insert as pg_insert  # noqa: PLC0415

    _SYNC = _sync()  # noqa: N806
    upsert = pg_insert(_SYNC).values(patient_id=patient_id, field_stamps=stamps, field_sources=sources, updated_at=now)
    return upsert.on_conflict_do_update(
        index_elements=["patient_id"],
        set_={"field_stamps": _SYNC.c.field_stamps.op("||")(upsert.excluded.field_stamps),
              "field_sources": _SYNC.c.field_sources.op("||")(upsert.excluded.field_sources), "updated_at": now},
    )


def record_write(uow: UnitOfWork, patient_id: uuid.UUID, stamps: dict[str, list[str]], sources: dict[str, Any],
                 now: datetime) -> dict[str, Any]:
    """Merge `stamps` and `sources` into the patient's record (one upsert); returns all its sources."""
    upsert = sync_upsert(patient_id, stamps, sources, now)
    return dict(uow.session.execute(upsert.returning(_sync().c.field_sources)).scalar_one() or {})


def record_api_edit(uow: UnitOfWork, patient_id: uuid.UUID, changed: list[str], principal_name: str,
                    now: datetime) -> dict[str, Any] | None:
    """Stamp the demographic fields an API edit changed; returns the patient's sources (None if none changed)."""
    fields = [f for f in changed if f in DEMOGRAPHIC_FIELDS]
    if not fields:
        return None
    at = stamp_text(now)
    stamps = {f: [at, API_MARK, ""] for f in fields}
    sources = {f: {"source": "api", "at": at, "by": principal_name[:100]} for f in fields}
    return record_write(uow, patient_id, stamps, sources, now)


def lis_sources(fields: list[str], stamp: tuple[str, str, str], message_id: uuid.UUID) -> dict[str, Any]:
    return {f: {"source": "lis", "at": stamp[0], "message_id": str(message_id)} for f in fields}


def current_sources(uow: UnitOfWork, patient_id: uuid.UUID) -> dict[str, Any]:
    import sqlalchemy as sa  # noqa: PLC0415

    sync = _sync()
    found = uow.session.execute(sa.select(sync.c.field_sources).where(sync.c.patient_id == patient_id)).scalar()
    return dict(found or {})
