"""Dead letters: receive undeliverable events, list them, and re-drive them.

Two ways an event ends up here, both delivered to the jobs function's ``/dead-letter`` path:
- a Knative Trigger's ``delivery.deadLetterSink``: the original CloudEvent plus the extensions
  ``knativeerrorcode`` (the subscriber's HTTP status), ``knativeerrordata`` (base64 of its response
  body, at most 1024 characters) and ``knativeerrordest`` (the subscriber's URL);
- a Pub/Sub dead-letter topic's push subscription (endpoint ``/dead-letter/projects/P/topics/T``,
  so functions-framework puts the topic in ``source``): a ``messagePublished`` CloudEvent whose
  message is the undeliverable one. The topic ``X-dead-letter`` re-drives to ``X``.

Rows are keyed by the CloudEvent (source, id), not by the jobs consumer's ``processed_events``:
the original event may also be addressed to jobs, and its later re-drive must not look like a
duplicate. The same event dead-lettered again after a re-drive re-opens its row.
A re-drive publishes the stored event again with the same id (deduping consumers apply it once).
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from shared import audit
from shared.auth import Principal
from shared.db import UnitOfWork
from shared.errors import Conflict, NotFound, ServiceUnavailable
from shared.events.dead_letter_route import KNATIVE_ERROR_EXTENSIONS
from shared.ids import uuid4
from shared.log import get_logger
from shared.models import DeadLetter
from shared.models.base import utcnow

log = get_logger("patient_mgt.events.dead_letters")

PUBSUB_PUBLISHED = "google.cloud.pubsub.topic.v1.messagePublished"
SINK = "sink"
_PUBSUB_SOURCE = re.compile(r"^//pubsub\.googleapis\.com/(projects/[^/]+/topics/[^/]+)$")
_DLQ_SUFFIX = "-dead-letter"


def data_bytes(data: Any) -> bytes | None:
    """The event data as bytes (the CloudEvents SDK hands JSON over already parsed)."""
    if data is None:
        return None
    if isinstance(data, (bytes, bytearray)):
        return bytes(data)
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def record(uow: UnitOfWork, attributes: dict[str, Any], data: Any) -> tuple[uuid.UUID | None, str]:
    """Store one dead-lettered delivery. Returns (row id, "stored" | "reopened" | "duplicate")."""
    attrs = {k: str(v) for k, v in attributes.items() if k != "data" and v is not None}
    is_knative = any(name in attrs for name in KNATIVE_ERROR_EXTENSIONS)
    values: dict[str, Any] = {
        "id": uuid4(),
        "event_id": attrs["id"],
        "event_source": attrs["source"],
        "event_type": attrs["type"],
        "event_subject": attrs.get("subject"),
        "attributes": {k: v for k, v in attrs.items() if k not in KNATIVE_ERROR_EXTENSIONS},
        "datacontenttype": attrs.get("datacontenttype"),
        "data": data_bytes(data),
        "error_code": (attrs.get("knativeerrorcode") or "")[:32] or None,
        "error_data": attrs.get("knativeerrordata"),
        "error_dest": (attrs.get("knativeerrordest") or "")[:500] or None,
        "received_at": utcnow(),
        "dead_letter_count": 1,
        "redrive_count": 0,
    }
    if not is_knative and attrs["type"] == PUBSUB_PUBLISHED:
        values["origin"] = "pubsub"
        values["redrive_target"] = _origin_topic(attrs["source"])
        message = data.get("message", {}) if isinstance(data, dict) else {}
        count = (message.get("attributes") or {}).get("CloudPubSubDeadLetterSourceDeliveryCount")
        values["delivery_attempts"] = int(count) if str(count or "").isdigit() else None
    else:
        values["origin"] = "knative"
        values["redrive_target"] = SINK
    stmt = pg_insert(DeadLetter).values(**values)
    again = {c: stmt.excluded[c] for c in ("received_at", "error_code", "error_data", "error_dest", "delivery_attempts")}
    row = uow.session.execute(
        stmt.on_conflict_do_update(
            index_elements=[DeadLetter.event_source, DeadLetter.event_id],
            set_={**again, "redriven_at": None, "dead_letter_count": DeadLetter.dead_letter_count + 1},
            where=DeadLetter.redriven_at.is_not(None),
        ).returning(DeadLetter.id, DeadLetter.dead_letter_count)
    ).first()
    if row is None:
        return None, "duplicate"
    return row.id, "stored" if row.dead_letter_count == 1 else "reopened"


def _origin_topic(source: str) -> str | None:
    m = _PUBSUB_SOURCE.match(source)
    if not m or not m.group(1).endswith(_DLQ_SUFFIX):
        return None
    return m.group(1).removesuffix(_DLQ_SUFFIX)


def list_dead_letters(
    uow: UnitOfWork, *, status: str = "pending", event_type: str | None = None, before: int | None = None, limit: int = 50
) -> list[DeadLetter]:
    stmt = sa.select(DeadLetter).order_by(DeadLetter.seq.desc()).limit(limit)
    if status == "pending":
        stmt = stmt.where(DeadLetter.redriven_at.is_(None))
    elif status == "redriven":
        stmt = stmt.where(DeadLetter.redriven_at.is_not(None))
    if event_type is not None:
        stmt = stmt.where(DeadLetter.event_type == event_type)
    if before is not None:
        stmt = stmt.where(DeadLetter.seq < before)
    return list(uow.session.scalars(stmt))


def get(uow: UnitOfWork, dead_letter_id: uuid.UUID) -> DeadLetter:
    row = uow.session.get(DeadLetter, dead_letter_id)
    if row is None:
        raise NotFound("No such dead letter")
    return row


def redrive(uow: UnitOfWork, dead_letter_id: uuid.UUID, *, timeout: float) -> DeadLetter:
    """Publish the stored event again and mark the row re-driven, in one transaction: if the sink
    refuses, nothing changes. Concurrent re-drives of one row serialise on its row lock."""
    row = uow.session.get(DeadLetter, dead_letter_id, with_for_update=True)
    if row is None:
        raise NotFound("No such dead letter")
    if row.redriven_at is not None:
        raise Conflict("This dead letter was already re-driven; it is listed again if delivery fails again")
    if row.redrive_target is None:
        raise Conflict("This dead letter cannot be re-driven: the topic it came from is unknown")
    from shared.events.publishing import PublishError  # noqa: PLC0415

    try:
        if row.redrive_target == SINK:
            _publish_to_sink(row, timeout)
        else:
            _republish_pubsub_message(row, timeout)
    except PublishError as error:
        log.warning("dead letter re-drive refused by the sink",
                    extra={"fields": {"dead_letter_id": str(row.id), "event_type": row.event_type, "error": error.code}})
        raise ServiceUnavailable("The event sink did not accept the event; nothing changed, try again") from None
    row.redriven_at = utcnow()
    row.redrive_count += 1
    log.info("dead letter re-driven", extra={"fields": {"dead_letter_id": str(row.id), "event_id": row.event_id,
                                                        "event_type": row.event_type, "target": row.redrive_target}})
    return row


def redrive_audited(uow: UnitOfWork, principal: Principal, dead_letter_id: uuid.UUID, *, timeout: float) -> DeadLetter:
    """:func:`redrive`, audited with the patient the event is about (the API's route and the
    operator console both re-drive through here)."""
    row = redrive(uow, dead_letter_id, timeout=timeout)
    audit.record(uow, principal, "events.dead_letter.redrive", subject_patient_ids([row]),
                 details={"dead_letter_id": str(row.id), "event_type": row.event_type, "redrive_count": row.redrive_count})
    return row


def subject_patient_ids(rows: list[DeadLetter]) -> list[uuid.UUID]:
    """The patients the events are about: their ``subject`` when it is a UUID."""
    ids = []
    for row in rows:
        try:
            ids.append(uuid.UUID(row.event_subject or ""))
        except ValueError:
            continue
    return ids


def _publish_to_sink(row: DeadLetter, timeout: float) -> None:
    from shared.events.publishing import publisher_from_settings  # noqa: PLC0415
    from shared.events.publishing.envelope import from_stored  # noqa: PLC0415

    publisher = publisher_from_settings()
    if publisher is None:
        # Not transient: retrying cannot help until the deployment configures a sink.
        raise Conflict("No event sink is configured (K_SINK or EVENT_SINK), so nothing can be re-driven")
    attributes = dict(row.attributes)
    if row.datacontenttype:
        attributes["datacontenttype"] = row.datacontenttype
    publisher.publish(from_stored(attributes, row.data), timeout)


def _republish_pubsub_message(row: DeadLetter, timeout: float) -> None:
    """The message inside a Pub/Sub dead letter goes back to the topic it was first published to."""
    from shared.events.publishing.pubsub_sink import publish_message  # noqa: PLC0415

    body = json.loads(row.data or b"{}")
    message = body.get("message") or {}
    attributes = {k: v for k, v in (message.get("attributes") or {}).items() if not k.startswith("CloudPubSubDeadLetter")}
    payload = base64.b64decode(message.get("data") or "")
    assert row.redrive_target is not None
    publish_message(row.redrive_target, payload, attributes, ordering_key=message.get("orderingKey") or "", timeout=timeout)


def handle_delivery(attributes: dict[str, Any], data: Any) -> str:
    """The jobs function's answer to a dead-letter delivery: 2xx once stored (or already stored),
    503 when the database is unavailable so the sender retries. Logged at ERROR: an operator must
    look at every dead letter."""
    import flask  # noqa: PLC0415

    from shared.consumer import retry_response  # noqa: PLC0415
    from shared.db import is_transient_db_error, unit_of_work  # noqa: PLC0415

    fields = {"event_id": str(attributes.get("id")), "event_type": str(attributes.get("type")),
              "event_source": str(attributes.get("source")), "error_code": attributes.get("knativeerrorcode")}
    try:
        with unit_of_work() as uow:
            dead_letter_id, outcome = record(uow, attributes, data)
    except Exception as exc:
        if is_transient_db_error(exc):
            log.warning("dead letter not stored yet; the sender will retry", extra={"fields": {**fields, "error_type": type(exc).__name__}})
            flask.abort(retry_response("database_unavailable"))
        log.error("dead letter could not be stored", exc_info=True, extra={"fields": fields})
        flask.abort(flask.make_response(flask.json.dumps({"status": "error"}), 500, {"Content-Type": "application/json"}))
    level = log.info if outcome == "duplicate" else log.error
    level("event dead-lettered", extra={"fields": {**fields, "outcome": outcome,
                                                    "dead_letter_id": str(dead_letter_id) if dead_letter_id else None}})
    return outcome
