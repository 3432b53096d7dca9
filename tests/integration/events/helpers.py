"""Small helpers shared by the event backbone's integration tests."""

from __future__ import annotations

import uuid

import sqlalchemy as sa

from shared.db import unit_of_work
from shared.events.outbox import emit
from shared.models import OutboxEvent
from tests.support.event_samples import sample_data


def emit_events(*pairs: tuple[str, uuid.UUID]) -> list[uuid.UUID]:
    """Emit (type, subject) events in one committed transaction; returns their ids in order."""
    with unit_of_work() as uow:
        return [emit(uow, event_type, subject, sample_data(event_type, subject)) for event_type, subject in pairs]


def outbox_rows(ids: list[uuid.UUID]) -> dict[uuid.UUID, OutboxEvent]:
    with unit_of_work() as uow:
        return {r.id: r for r in uow.session.scalars(sa.select(OutboxEvent).where(OutboxEvent.id.in_(ids)))}
