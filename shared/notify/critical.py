"""Sending a critical-result alert (``result.critical``) or its escalation (``critical_alert.escalated``).

The team is the route of the alert's facility/ward (CRITICAL_ALERT_ROUTES, read when sending, so a
corrected route applies to the next message); the escalation goes to the route's ``escalate_to``. Like a
patient notification it spans three transactions — claim, send, record — and the message row, unique per
(alert, level), is the idempotency record: a redelivered event sends nothing twice. A claim older than
NOTIFY_SENDING_LEASE_SECONDS becomes ``failed``/``outcome_unknown``, never resent (see docs/notifications.md).
Webhooks get ids and codes (no value); see ``shared.critical.rules.render`` for what e-mail and SMS say.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from shared import audit
from shared.auth import SYSTEM_NOTIFY
from shared.consumer import RetryLater
from shared.critical import rules
from shared.db import unit_of_work
from shared.ids import uuid4
from shared.log import get_logger
from shared.models import CriticalAlert, CriticalAlertMessage, LabResult
from shared.models.base import utcnow
from shared.notify import runtime
from shared.notify.providers.base import PermanentProviderError, Provider, TransientProviderError
from shared.settings import AlertTarget, get_settings

log = get_logger("patient_mgt.notify.critical")
WEBHOOK_TIMEOUT_SECONDS = 10


class UnknownAlert(Exception):
    """The event names an alert that does not exist: it can never apply."""


def _where(alert: CriticalAlert) -> str:
    if alert.ward and alert.facility:
        return f"{alert.ward} ({alert.facility})"
    return alert.ward or alert.facility or "an unnamed location"


def _claim(alert_id: uuid.UUID, level: str) -> tuple[str, dict[str, Any] | None]:
    """Transaction 1: ("send", what to send) for a claimed row, or (outcome, None) when nothing is to be sent."""
    settings = get_settings()
    now = utcnow()
    with unit_of_work() as uow:
        alert = uow.session.get(CriticalAlert, alert_id, with_for_update={"key_share": True, "read": True})
        if alert is None:
            raise UnknownAlert(str(alert_id))
        if alert.status == "acknowledged":
            return "acknowledged", None  # someone is on it: no (further) message
        _key, route = rules.route_for(settings.critical_alert_routes, alert.facility, alert.ward)
        target = rules.target_for(route, level)
        values = {"alert_id": alert_id, "level": level, "channel": target.channel if target else None,
                  "created_at": now, "updated_at": now}
        if target is None:
            inserted = uow.session.execute(pg_insert(CriticalAlertMessage).values(
                id=uuid4(), status="unrouted", reason="no_route", attempts=0, **values)
                .on_conflict_do_nothing().returning(CriticalAlertMessage.id)).scalar_one_or_none()
            if inserted is not None:
                log.error("critical alert has no route", extra={"fields": {"alert_id": str(alert_id), "level": level}})
                audit.record(uow, SYSTEM_NOTIFY, "critical_alert.send", [alert.patient_id], outcome="unrouted",
                             details={"alert_id": str(alert_id), "level": level})
            return "unrouted", None
        claimed = uow.session.execute(pg_insert(CriticalAlertMessage).values(
            id=uuid4(), status="sending", claimed_at=now, attempts=1, **values)
            .on_conflict_do_nothing().returning(CriticalAlertMessage.id)).scalar_one_or_none()
        if claimed is None:
            row = uow.session.scalar(sa.select(CriticalAlertMessage).where(
                CriticalAlertMessage.alert_id == alert_id, CriticalAlertMessage.level == level).with_for_update())
            assert row is not None
            if row.status == "sending" and row.claimed_at and row.claimed_at < now - timedelta(
                    seconds=settings.notify_sending_lease_seconds):
                row.status, row.reason, row.updated_at = "failed", "outcome_unknown", now
                audit.record(uow, SYSTEM_NOTIFY, "critical_alert.send", [alert.patient_id], outcome="outcome_unknown",
                             details={"alert_id": str(alert_id), "level": level})
                return "outcome_unknown", None
            if row.status == "sending":
                raise RetryLater("alert_in_flight")
            if row.status != "pending":
                return "duplicate", None
            row.status, row.claimed_at, row.attempts, row.updated_at = "sending", now, row.attempts + 1, now
            claimed = row.id
        result = uow.session.get(LabResult, alert.result_id)
        assert result is not None
        flags = ",".join(result.abnormal_flags or []) or "-"
        content = {
            "message_id": claimed, "patient_id": alert.patient_id, "target": target,
            "where": _where(alert), "test": f"{result.code_display or result.code} ({result.code})",
            "result": f"{result.value} {result.units or ''}".strip() + f" [{flags}]"
                      + (f" (reference {result.reference_range})" if result.reference_range else ""),
            "observed": result.observed_at,
            "webhook": {"alert_id": str(alert.id), "level": level, "patient_id": str(alert.patient_id),
                        "result_id": str(alert.result_id), "order_id": str(alert.order_id) if alert.order_id else None,
                        "code": alert.code, "reason": alert.reason, "facility": alert.facility, "ward": alert.ward,
                        "escalate_at": alert.escalate_at.isoformat()},
        }
        return "send", content


def _post_webhook(url: str, payload: dict[str, Any]) -> str:
    request = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT_SECONDS) as response:  # noqa: S310 — configured URL
            return f"webhook-{response.status}"
    except urllib.error.HTTPError as exc:
        if exc.code >= 500 or exc.code in (408, 429):
            raise TransientProviderError(f"http_{exc.code}") from None
        raise PermanentProviderError(f"http_{exc.code}") from None
    except (urllib.error.URLError, TimeoutError, OSError):
        raise TransientProviderError("webhook_unreachable") from None


def _send(target: AlertTarget, level: str, alert_id: uuid.UUID, content: dict[str, Any], provider: Provider) -> str:
    settings = get_settings()
    link = rules.alert_link(settings.critical_alert_link, alert_id)
    if target.channel == "webhook":
        return _post_webhook(target.to, {**content["webhook"], "link": link})
    rendered = rules.render(target.channel, level, alert_id=alert_id, where=content["where"], test=content["test"],
                            result=content["result"], observed=content["observed"],
                            minutes=round(settings.critical_alert_escalate_after_seconds / 60), link=link)
    if target.channel == "sms":
        return provider.send_sms(target.to, rendered)
    return provider.send_email(target.to, rendered, from_address=runtime.email_from())


def deliver(alert_id: uuid.UUID, level: str, *, provider: Provider | None = None) -> str:
    """Send the alert (level "alert") or its escalation once; returns the outcome. RetryLater: 503."""
    outcome, content = _claim(alert_id, level)
    if content is None:
        return outcome
    target: AlertTarget = content["target"]
    status, reason, message_ref = "sent", None, None
    try:
        message_ref = _send(target, level, alert_id, content, provider or runtime.get_provider())
    except TransientProviderError as exc:
        status, reason = "pending", exc.reason
    except PermanentProviderError as exc:
        status, reason = "failed", exc.reason
    now = utcnow()
    with unit_of_work() as uow:
        uow.session.execute(sa.update(CriticalAlertMessage).where(CriticalAlertMessage.id == content["message_id"]).values(
            status=status, reason=reason, provider_message_id=message_ref, sent_at=now if status == "sent" else None,
            claimed_at=None if status != "sending" else now, updated_at=now))
        audit.record(uow, SYSTEM_NOTIFY, "critical_alert.send", [content["patient_id"]],
                     outcome="success" if status == "sent" else status,
                     details={"alert_id": str(alert_id), "level": level, "channel": target.channel, "reason": reason})
    log.info("critical alert message", extra={"fields": {"alert_id": str(alert_id), "level": level,
                                                          "channel": target.channel, "status": status, "reason": reason}})
    if status == "pending":
        raise RetryLater("provider_unavailable")
    return status
