"""Append CloudEvents to the outbox in the caller's transaction.

The row *is* the CloudEvent (id, source, type, subject, time, dataschema, data) plus the W3C
trace context, so publishing later needs nothing else. Publishing happens after the commit
(``shared.events.publishing.relay.publish_committed``, registered as the unit of work's
after-commit callback by the first ``emit``); a rolled-back transaction therefore never emits
anything, and one that emits nothing pays nothing.
"""

from __future__ import annotations

import functools
import uuid
from typing import TYPE_CHECKING, Any

from shared.events.catalog import CATALOG, EventData, dataschema_for
from shared.ids import uuid4
from shared.instants import utcnow
from shared.settings import get_settings
from shared.telemetry.tracecontext import current_traceparent, current_tracestate

if TYPE_CHECKING:
    from shared.db import UnitOfWork


@functools.cache
def _insert() -> Any:
    """The outbox's INSERT (SQLAlchemy loads with the first `emit`: the LIS fast path writes its rows
    as SQL text, ``shared.lis.pending``, and imports `event_source` only)."""
    import sqlalchemy as sa  # noqa: PLC0415

    from shared.models import OutboxEvent  # noqa: PLC0415

    return sa.insert(OutboxEvent.__table__)


def event_source() -> str:
    settings = get_settings()
    if settings.event_source:
        return settings.event_source
    target = (settings.function_target or "api").replace("_", "-")
    return f"/patient-mgt/{target}"


def emit(uow: UnitOfWork, event_type: str, subject: uuid.UUID | str | None, data: EventData) -> uuid.UUID:
    """Add one event to the outbox; returns its CloudEvent id."""
    model = CATALOG[event_type][0]
    if not isinstance(data, model):
        raise TypeError(f"{event_type} carries {model.__name__}, not {type(data).__name__}")
    event_id = uuid4()
    # Core insert on the session's connection, same transaction (cheaper than the ORM bulk path).
    # One statement object with bound parameters: its compiled form is cached once, where
    # ``.values(...)`` with the values inline made SQLAlchemy build a cache key over them every time.
    uow.session.connection().execute(
        _insert(),
        {
            "id": event_id,
            "source": event_source(),
            "type": event_type,
            "subject": str(subject) if subject is not None else None,
            "time": utcnow(),
            "dataschema": dataschema_for(event_type),
            "data": data.model_dump(mode="json"),
            "traceparent": current_traceparent(),
            "tracestate": current_tracestate(),
        },
    )
    if not uow.outbox_ids:
        uow.after_commit(lambda: _publish_after_commit(uow.outbox_ids))
    uow.outbox_ids.append(event_id)
    return event_id


def _publish_after_commit(ids: list[uuid.UUID]) -> None:
    """The immediate publish (imported lazily: a transaction that emits nothing pays nothing)."""
    from shared.events.publishing.after_commit import publish_after_commit  # noqa: PLC0415

    publish_after_commit(list(ids))
