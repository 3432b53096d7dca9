"""Consent, address, patient status and quiet hours: the decision for one channel (pure, no database)."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime, time, timedelta, timezone

import pytest

from shared.notify.delivery import Claimed, deliver, retry_delay
from shared.notify.policy import (
    NO_ADDRESS,
    NO_CONSENT,
    PATIENT_INACTIVE,
    PATIENT_MERGED,
    QUIET_HOURS,
    Decision,
    Recipient,
    decide,
)
from shared.notify.providers import PermanentProviderError, TransientProviderError
from shared.notify.providers.fake import FakeProvider
from shared.notify.render import render

START, END = time(21, 0), time(8, 0)
MADRID_NOON = datetime(2026, 6, 10, 10, 0, tzinfo=timezone.utc)  # 12:00 in Madrid (CEST)
MADRID_NIGHT = datetime(2026, 6, 10, 21, 30, tzinfo=timezone.utc)  # 23:30 in Madrid

PATIENT = Recipient(
    patient_id=uuid.uuid4(), status="active", email="xq@example.org", phone="+34600111222",
    comm_email=True, comm_sms=True, timezone="Europe/Madrid", language="es", given_name="Xiomarita",
)


def _decide(channel, recipient=PATIENT, now=MADRID_NOON) -> Decision:
    return decide(channel, recipient, now, quiet_start=START, quiet_end=END)


@pytest.mark.parametrize("channel", ["email", "sms"])
def test_an_opted_in_active_patient_with_an_address_is_sent_to_in_the_day(channel):
    assert _decide(channel) == Decision("send")


@pytest.mark.parametrize(("channel", "change"), [("email", {"comm_email": False}), ("sms", {"comm_sms": False})])
def test_no_consent_on_a_channel_skips_that_channel_only(channel, change):
    other = "sms" if channel == "email" else "email"
    recipient = replace(PATIENT, **change)
    assert _decide(channel, recipient) == Decision("skip", NO_CONSENT)
    assert _decide(other, recipient) == Decision("send")


@pytest.mark.parametrize(("channel", "change"), [("email", {"email": None}), ("sms", {"phone": ""})])
def test_consent_without_an_address_is_skipped_as_no_address(channel, change):
    assert _decide(channel, replace(PATIENT, **change)) == Decision("skip", NO_ADDRESS)


def test_consent_is_checked_before_the_address():
    assert _decide("email", replace(PATIENT, comm_email=False, email=None)) == Decision("skip", NO_CONSENT)


@pytest.mark.parametrize(("status", "reason"), [("inactive", PATIENT_INACTIVE), ("merged", PATIENT_MERGED)])
@pytest.mark.parametrize("channel", ["email", "sms"])
def test_inactive_and_merged_patients_are_skipped(status, reason, channel):
    assert _decide(channel, replace(PATIENT, status=status)) == Decision("skip", reason)


def test_an_sms_in_quiet_hours_is_scheduled_for_the_morning_in_the_patients_zone():
    decision = _decide("sms", now=MADRID_NIGHT)
    # 08:00 in Madrid the next day (CEST, UTC+2) = 06:00 UTC
    assert decision == Decision("schedule", QUIET_HOURS, datetime(2026, 6, 11, 6, 0, tzinfo=timezone.utc))


def test_email_is_never_deferred_by_quiet_hours():
    assert _decide("email", now=MADRID_NIGHT) == Decision("send")


def test_quiet_hours_use_the_patients_zone_not_utc():
    # 21:30 UTC is 14:30 in Los Angeles: daytime there.
    assert _decide("sms", replace(PATIENT, timezone="America/Los_Angeles"), MADRID_NIGHT) == Decision("send")


def test_the_recipient_never_prints_contact_data():
    text = repr(PATIENT) + str(PATIENT)
    assert "example.org" not in text and "+34600111222" not in text and "Xiomarita" not in text


def test_retry_delay_grows_and_is_capped():
    assert [retry_delay(n) for n in (1, 2, 3)] == [timedelta(minutes=1), timedelta(minutes=2), timedelta(minutes=4)]
    assert retry_delay(30) == timedelta(hours=1)


def _claimed(channel: str, to: str) -> Claimed:
    ctx = {"portal_url": "https://portal.example.org/lab"}
    if channel == "email":
        ctx |= {"given_name": "X", "facility_name": "F"}
    return Claimed(uuid.uuid4(), uuid.uuid4(), "results_ready", channel, to=to,  # type: ignore[arg-type]
                   rendered=render("results_ready", channel, "en", ctx))  # type: ignore[arg-type]


def test_deliver_maps_provider_answers_to_outcomes():
    provider = FakeProvider()
    sent = deliver(_claimed("sms", "+34600111222"), provider)
    assert (sent.status, sent.message_id) == ("sent", "fake-1")
    provider.fail_next(TransientProviderError("Throttling"))
    assert deliver(_claimed("email", "a@example.org"), provider).status == "pending"
    provider.fail_next(PermanentProviderError("MessageRejected"))
    failed = deliver(_claimed("email", "a@example.org"), provider)
    assert (failed.status, failed.reason) == ("failed", "MessageRejected")
    assert len(provider.sent) == 1


def test_deliver_reports_an_unexpected_error_as_unknown_without_raising():
    class Broken:
        name = "broken"

        def send_sms(self, to, rendered):
            raise KeyError("MessageId")

    outcome = deliver(_claimed("sms", "+34600111222"), Broken())  # type: ignore[arg-type]
    assert outcome.status == "unknown" and isinstance(outcome.error, KeyError)
