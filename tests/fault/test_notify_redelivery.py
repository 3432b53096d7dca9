"""Redelivery and reordering of notification events: every event delivered three times, shuffled,
several at a time, to a real notify process sending through moto — one send per (event, channel)."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from datetime import datetime, timezone

import pytest
import requests
from cloudevents.conversion import to_binary

from tests.support.notify import create_final_result, create_patient, notification_rows, notify_env, outbox_cloudevent
from tests.support.notify import moto  # noqa: F401 — the fixture

pytestmark = [pytest.mark.fault, pytest.mark.e2e]
PATIENTS = 12


def daytime_zone() -> str:
    """An IANA zone where it is now midday, so quiet hours never defer the SMS whenever CI runs."""
    offset = 12 - datetime.now(timezone.utc).hour  # local = UTC + offset; Etc/GMT signs are inverted
    return "Etc/GMT" if offset == 0 else f"Etc/GMT{'-' if offset > 0 else '+'}{abs(offset)}"


def deliver_until_acknowledged(url: str, requests_: list[tuple[dict, bytes]], concurrency: int = 4) -> Counter:
    """Push like a broker: anything but 2xx is delivered again after a short backoff."""
    queue = list(requests_)
    lock = threading.Lock()
    answers: Counter = Counter()
    deadline = time.monotonic() + 120

    def worker() -> None:
        session = requests.Session()
        while True:
            with lock:
                if not queue:
                    return
                headers, body = queue.pop()
            while time.monotonic() < deadline:
                try:
                    status = session.post(url, headers=headers, data=body, timeout=30).status_code
                except requests.RequestException as exc:
                    status = type(exc).__name__
                with lock:
                    answers[status] += 1
                if isinstance(status, int) and 200 <= status < 300:
                    break
                time.sleep(0.1)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return answers


@pytest.mark.timeout(240)
def test_notification_events_delivered_three_times_shuffled_send_once_each(database_url, fault_run, moto):
    zone = daytime_zone()
    patients = [create_patient(timezone_name=zone) for _ in range(PATIENTS)]
    for p in patients:
        fault_run.remember_phi(p.given, p.family, p.email, p.phone)
    events = {p.id: (p.registered_event_id, create_final_result(p.id)) for p in patients}
    http = [to_binary(outbox_cloudevent(event_id)) for pair in events.values() for event_id in pair]
    deliveries = [request for request in http for _ in range(3)]
    random.Random(4).shuffle(deliveries)
    notify = fault_run.start("notify", notify_env(moto.url))

    answers = deliver_until_acknowledged(notify.url, deliveries)

    assert answers[200] == len(deliveries), answers
    assert set(answers) <= {200, 503}, f"answers other than 200 and 'retry later': {answers}"
    for p in patients:
        rows = notification_rows(patient_id=p.id)
        keys = [(r.event_id, r.kind, r.channel) for r in rows]
        assert len(keys) == len(set(keys))
        registered, result = (str(e) for e in events[p.id])
        assert {r.event_id for r in rows} <= {registered, result}
        sent = Counter(r.channel for r in rows if r.status == "sent")
        # one send each: what the provider received is exactly what the rows say was sent …
        assert len(moto.emails_to(p.email)) == sent["email"]
        assert len(moto.sms_to(p.phone)) == sent["sms"]
        # … and the result event, for an opted-in patient in daytime, was sent on both channels.
        result_rows = {(r.channel, r.status) for r in rows if r.event_id == result}
        assert result_rows == {("email", "sent"), ("sms", "sent")}, result_rows
