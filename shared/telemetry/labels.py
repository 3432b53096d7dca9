"""Bounded attribute values: every metric attribute passes through one of these.

A label is a route template, a status class, an event type from the catalog, an HL7 message type,
an outcome code, a channel, a job name — never an id, a path, a name or any input a caller can vary
freely. Values outside the expected set collapse to ``other``, so a misbehaving sender cannot grow
a metric's series without bound (and cannot smuggle text into an exported datum).
"""

from __future__ import annotations

import re

from shared.events.type_names import PREFIX

OTHER = "other"
_HL7_FAMILIES = frozenset({"ACK", "ADT", "BAR", "DFT", "MDM", "MFN", "OML", "ORL", "ORM", "ORR", "ORU", "QBP", "RSP", "SIU"})
_HL7_TYPE = re.compile(r"^([A-Z]{3})(?:\^([A-Z][0-9]{2}))?")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
# Event types that arrive from outside the catalog (PingSource ticks, Pub/Sub via Eventarc).
_EXTERNAL_EVENT_TYPES = frozenset({
    "dev.knative.sources.ping",
    "google.cloud.pubsub.topic.v1.messagePublished",
    "google.cloud.scheduler.job.v1.executed",
})


def status_class(status: int) -> str:
    return f"{status // 100}xx" if 100 <= status <= 599 else OTHER


def event_type(value: object) -> str:
    """A catalog event type (``org.patientmgt.*``) or a known platform type, else ``other``."""
    text = str(value or "")
    if text in _EXTERNAL_EVENT_TYPES:
        return text
    if not text.startswith(PREFIX):  # a PingSource tick never loads the catalog's payload models
        return OTHER
    from shared.events.catalog import CATALOG  # noqa: PLC0415 — a dict lookup, imported on first use

    return text if text in CATALOG else OTHER


def hl7_message_type(value: str | None) -> str:
    """``ORU^R01``-shaped types of the known HL7 v2 families, the family alone, or ``other``."""
    if not value:
        return "unknown"
    m = _HL7_TYPE.match(value)
    if not m or m.group(1) not in _HL7_FAMILIES:
        return OTHER
    return f"{m.group(1)}^{m.group(2)}" if m.group(2) else m.group(1)


def name(value: object, allowed: frozenset[str] | tuple[str, ...] | None = None) -> str:
    """A short lower-case code (job, channel, status, outcome, reason); ``other`` when unexpected."""
    text = str(value or "")
    if allowed is not None:
        return text if text in allowed else OTHER
    return text if _NAME.match(text) else OTHER
