"""The Prometheus text of the instruments, and a scrape that survives an unreadable database."""

import pytest

from shared.telemetry import instruments, prometheus, queues, setup
from tests.support.telemetry import capture


@pytest.fixture()
def cap():
    yield from capture(prometheus=True, queue_gauges=True, traces=False)


def test_instruments_render_in_prometheus_names(cap, monkeypatch):
    monkeypatch.setattr(queues, "read_depths", lambda: {key: 7.0 for *_, key in queues.GAUGES})
    queues.forget()
    instruments.REGISTRATIONS_REJECTED.add(1, {"reason": "duplicate"})
    instruments.LIS_LAG.record(90.0, {"message_type": "ORU^R01"})
    body, content_type = prometheus.render()
    text = body.decode()
    assert content_type.startswith("text/plain; version=0.0.4")
    assert 'patient_mgt_registrations_rejected_total{reason="duplicate"} 1.0' in text
    assert 'patient_mgt_lis_lag_seconds_bucket{le="120.0",message_type="ORU^R01"} 1.0' in text
    assert 'patient_mgt_lis_lag_seconds_bucket{le="60.0",message_type="ORU^R01"} 0.0' in text
    for name in ("patient_mgt_outbox_unpublished 7.0", "patient_mgt_outbox_oldest_age_seconds 7.0",
                 "patient_mgt_notifications_due 7.0", "patient_mgt_lis_quarantined 7.0", "patient_mgt_dead_letters_pending 7.0"):
        assert name in text


def test_a_scrape_without_a_database_still_answers_without_the_gauges(cap, monkeypatch):
    def down():
        raise ConnectionRefusedError("database down")

    monkeypatch.setattr(queues, "read_depths", down)
    queues.forget()
    instruments.REGISTRATIONS_ATTEMPTED.add(1)
    text = prometheus.render()[0].decode()
    assert "patient_mgt_registrations_attempted_total 1.0" in text
    assert "patient_mgt_outbox_unpublished" not in text


def test_nothing_is_rendered_when_prometheus_is_not_an_exporter():
    setup.shutdown()
    assert prometheus.render() is None
