"""What applying a LIS message knows going in (`MessageContext`) and reports back (`Applied`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shared.lis.ordering import Stamp

if TYPE_CHECKING:
    from shared.lis.pending import Pending


@dataclass(frozen=True)
class MessageContext:
    message_id: uuid.UUID
    stamp: Stamp
    facility: str
    control_id: str
    digest: str = ""
    # Another message with other content was claimed under this (MSH-4, MSH-10) first: keys derived
    # from the control id alone (orders without numbers) must not name that message's rows.
    reused_control_id: bool = False
    # The consumer's fast path: writes after the message's last read wait here for its final
    # statement (`shared.lis.pending`); None writes at once (savepoints, replay, several groups).
    pending: Pending | None = field(default=None, compare=False)
    # The fast path's patient lookup, made with the claim: (identifier keys, the locked rows of
    # `shared.lis.patients.find_and_lock`), used once by the lookup of those keys.
    found: tuple[tuple[tuple[str, str], ...], list[Any]] | None = field(default=None, compare=False)
    # The fast path's lookup of the group's first order (by key), made with the claim: (its keys, the
    # locked rows of `shared.lis.orders.find_text`), used by that order's lookup when nothing was
    # written to ``lab_orders`` before it (the first order the group writes).
    found_order: tuple[Any, list[Any]] | None = field(default=None, compare=False)


@dataclass
class Applied:
    """What applying a message (or one of its patient groups) did: ids, counts and codes only."""

    status: str  # processed | ignored | quarantined (some patient groups applied, one or more not)
    reason: str | None = None
    patient_id: uuid.UUID | None = None
    patient: str = "none"  # created | updated | unchanged | none (the first group's)
    changed: list[str] = field(default_factory=list)
    orders_created: int = 0
    orders_updated: int = 0
    orders_accepted: int = 0  # orders placed here that this message says the LIS accepted
    results: int = 0
    observations: int = 0
    merged_from: list[uuid.UUID] = field(default_factory=list)
    patient_ids: list[uuid.UUID] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.patient_id is not None and not self.patient_ids:
            self.patient_ids = [self.patient_id]

    def add(self, other: Applied) -> None:
        """Fold a patient group's outcome into the message's."""
        if self.patient_id is None:
            self.patient_id, self.patient, self.changed = other.patient_id, other.patient, other.changed
        self.patient_ids += [p for p in other.patient_ids if p not in self.patient_ids]
        self.orders_created += other.orders_created
        self.orders_updated += other.orders_updated
        self.orders_accepted += other.orders_accepted
        self.results += other.results
        self.observations += other.observations
        self.merged_from += other.merged_from
