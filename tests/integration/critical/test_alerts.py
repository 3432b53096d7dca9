"""Critical-result alerts against PostgreSQL: raised once per result, by flag or configured range; sent
once per level (in-memory provider); nothing sent for an acknowledged alert; no route is recorded."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from shared.auth import SYSTEM_CLI
from shared.consumer import RetryLater
from shared.critical import alerts
from shared.db import unit_of_work
from shared.events import catalog
from shared.models import AuditEntry, CriticalAlert, CriticalAlertMessage, OutboxEvent
from shared.notify import critical
from shared.notify.providers.base import TransientProviderError
from shared.notify.providers.fake import FakeProvider
from shared.settings import reset_settings
from tests.support import lis_db
from tests.support.lis_ingest import Feed, hl7, one


@pytest.fixture()
def feed(monkeypatch: pytest.MonkeyPatch, database_url: str) -> Iterator[Feed]:
    f = Feed()
    monkeypatch.setenv("CRITICAL_RANGES", json.dumps({"2823-3": {"low": 2.8, "high": 6.2}}))
    monkeypatch.setenv("CRITICAL_ALERT_ROUTES", json.dumps({f.facility: {"channel": "sms", "to": "+14155550199"}}))
    monkeypatch.setenv("CRITICAL_ALERT_ESCALATE_AFTER_SECONDS", "600")
    reset_settings()
    yield f
    monkeypatch.undo()
    reset_settings()


def _potassium(f: Feed, value: str, flag: str, status: str, when: str, *, facility: str | None = None) -> list[uuid.UUID]:
    msh = f.msh("ORU^R01", when)
    if facility:
        msh = msh.replace(f.facility, facility, 1)
    assert one(hl7(msh, f.pid("MRN1"), f"ORC|RE|{f.id('PL')}|{f.id('FI')}", f"OBR|1|{f.id('PL')}|{f.id('FI')}|2823-3^K^LN",
                   f"OBX|1|NM|2823-3^Potassium^LN||{value}|mmol/L|3.5-5.1|{flag}|||{status}|||20260301080000")).status == "processed"
    order = lis_db.order_by_number(placer=f.id("PL"))
    return [r["id"] for r in lis_db.results(order["id"])]


def _alerts_of(result_ids: list[uuid.UUID]) -> list[CriticalAlert]:
    with unit_of_work() as uow:
        return list(uow.session.scalars(sa.select(CriticalAlert).where(CriticalAlert.result_id.in_(result_ids))))


def test_a_range_breach_raises_one_alert_even_when_corrected_and_still_critical(feed: Feed) -> None:
    ids = _potassium(feed, "2.1", "L", "F", "20260301090000")  # only L, but below the configured 2.8
    with unit_of_work() as uow:
        [alert_id] = alerts.raise_alerts(uow, ids)
    ids_after = _potassium(feed, "2.2", "L", "C", "20260301100000")  # corrected, still critical
    assert ids_after == ids
    with unit_of_work() as uow:
        assert alerts.raise_alerts(uow, ids) == []
    [alert] = _alerts_of(ids)
    assert (alert.id, alert.reason, alert.route, alert.status) == (alert_id, "range:low", feed.facility, "open")
    with unit_of_work() as uow:
        events = uow.session.scalars(sa.select(OutboxEvent.data).where(OutboxEvent.type == catalog.RESULT_CRITICAL,
                                                                       OutboxEvent.data["alert_id"].astext == str(alert_id))).all()
    assert len(events) == 1 and set(events[0]) == {"alert_id", "patient_id", "result_id", "order_id"}


def test_a_normal_result_raises_nothing(feed: Feed) -> None:
    ids = _potassium(feed, "4.0", "N", "F", "20260301090000")
    with unit_of_work() as uow:
        assert alerts.raise_alerts(uow, ids) == []
    assert _alerts_of(ids) == []


def test_sent_once_retried_after_a_provider_outage_and_never_after_acknowledgement(feed: Feed) -> None:
    with unit_of_work() as uow:
        [alert_id] = alerts.raise_alerts(uow, _potassium(feed, "7.1", "HH", "F", "20260301090000"))
    provider = FakeProvider()
    provider.fail_next(TransientProviderError("Throttling"))
    with pytest.raises(RetryLater):
        critical.deliver(alert_id, "alert", provider=provider)
    assert critical.deliver(alert_id, "alert", provider=provider) == "sent"
    assert critical.deliver(alert_id, "alert", provider=provider) == "duplicate"
    assert [m.to for m in provider.sent] == ["+14155550199"]
    with unit_of_work() as uow:
        alerts.acknowledge(uow, SYSTEM_CLI, alert_id)
    assert critical.deliver(alert_id, "escalation", provider=provider) == "acknowledged"
    assert len(provider.sent) == 1
    with unit_of_work() as uow:
        [message] = uow.session.scalars(sa.select(CriticalAlertMessage).where(CriticalAlertMessage.alert_id == alert_id))
        assert (message.level, message.status, message.attempts) == ("alert", "sent", 2)
        outcomes = uow.session.scalars(sa.select(AuditEntry.outcome).where(
            AuditEntry.action == "critical_alert.send", AuditEntry.details["alert_id"].astext == str(alert_id))
            .order_by(AuditEntry.id)).all()
    assert outcomes == ["pending", "success"]


def test_no_route_is_recorded_and_logged_not_lost_silently(feed: Feed) -> None:
    with unit_of_work() as uow:
        [alert_id] = alerts.raise_alerts(uow, _potassium(feed, "7.5", "HH", "F", "20260301090000", facility="NOWHERE" + feed.tag))
    provider = FakeProvider()
    assert critical.deliver(alert_id, "alert", provider=provider) == "unrouted"
    assert critical.deliver(alert_id, "alert", provider=provider) == "unrouted"
    assert provider.sent == []
    with unit_of_work() as uow:
        [message] = uow.session.scalars(sa.select(CriticalAlertMessage).where(CriticalAlertMessage.alert_id == alert_id))
        assert (message.status, message.reason, message.channel) == ("unrouted", "no_route", None)
        assert uow.session.scalar(sa.select(sa.func.count()).select_from(AuditEntry).where(
            AuditEntry.action == "critical_alert.send", AuditEntry.outcome == "unrouted",
            AuditEntry.details["alert_id"].astext == str(alert_id))) == 1


def test_escalation_happens_once_and_only_when_due(feed: Feed) -> None:
    from datetime import timedelta  # noqa: PLC0415

    from shared.models.base import utcnow  # noqa: PLC0415

    with unit_of_work() as uow:
        [alert_id] = alerts.raise_alerts(uow, _potassium(feed, "7.2", "HH", "F", "20260301090000"))
    with unit_of_work() as uow:
        assert alert_id not in alerts.escalate_due(uow)  # 600 s not yet passed
    later = utcnow() + timedelta(seconds=601)
    with unit_of_work() as uow:
        assert alert_id in alerts.escalate_due(uow, now=later)
    with unit_of_work() as uow:
        assert alert_id not in alerts.escalate_due(uow, now=later + timedelta(hours=1))


@pytest.mark.parametrize(("value", "flag"), [("2.1", "L"), ("4.0", "N"), ("4.0", "HH"), ("7.9", "")])
def test_the_notify_check_finds_a_critical_result_exactly_when_raise_alerts_raises_one(feed: Feed, value: str,
                                                                                        flag: str) -> None:
    """notify asks ``check.any_critical`` (SQL text, no ORM) before ``raise_alerts``: the same verdict,
    by flag (HH), by the configured range (2.1, 7.9), and none for a normal result (4.0 N)."""
    from shared.critical.check import any_critical

    ids = _potassium(feed, value, flag, "F", "20260301090000")
    verdict = any_critical(ids)
    with unit_of_work() as uow:
        raised = alerts.raise_alerts(uow, ids)
    assert verdict is bool(raised)
    assert verdict is (value != "4.0" or flag == "HH")
    assert any_critical([]) is False
