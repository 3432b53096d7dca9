"""Api metrics through functions-framework's test client: request durations per route template,
registration outcomes from real requests, and GET /metrics."""

import uuid

from tests.conftest import auth
from tests.http.telemetry.conftest import patient_body

DURATION = "http.server.request.duration"
READ_ROUTE = "/patients/<uuid:patient_id>"


def test_request_durations_are_recorded_per_route_template_and_status_class_never_per_id(client, admin_token, cap):
    ids = [uuid.uuid4() for _ in range(3)]
    for pid in ids:
        assert client.get(f"/patients/{pid}", headers=auth(admin_token)).status_code == 404
    created = client.post("/patients", json=patient_body(), headers=auth(admin_token))
    assert created.status_code == 201
    assert client.get(created.headers["Location"], headers=auth(admin_token)).status_code == 200
    assert client.get(f"/patients/{uuid.uuid4()}").status_code == 401

    data = cap.collect()
    [not_found] = cap.histogram(DURATION, data, **{"http.route": READ_ROUTE, "http.response.status_class": "4xx"})
    assert not_found.count == 4  # three 404s and the 401, one series
    [found] = cap.histogram(DURATION, data, **{"http.route": READ_ROUTE, "http.response.status_class": "2xx"})
    assert found.count == 1 and dict(found.attributes)["http.request.method"] == "GET"
    [post] = cap.histogram(DURATION, data, **{"http.route": "/patients", "http.request.method": "POST"})
    assert post.count == 1 and post.sum > 0
    exported = data.to_json()
    for pid in [*ids, created.get_json()["id"]]:
        assert str(pid) not in exported


def test_registration_counters_move_with_real_requests(client, admin_token, cap):
    headers = auth(admin_token)
    ident = {"system": "urn:test:telemetry", "value": uuid.uuid4().hex}
    first = patient_body(identifiers=[ident])
    assert client.post("/patients", json=first, headers=headers).status_code == 201
    assert client.post("/patients", json=patient_body(), headers=headers).status_code == 201
    # the same identifier for another person: conflict
    assert client.post("/patients", json=patient_body(identifiers=[ident]), headers=headers).status_code == 409
    # the same person again (name and birth date): probable duplicate
    assert client.post("/patients", json={**first, "identifiers": []}, headers=headers).status_code == 409
    # invalid bodies: validation
    assert client.post("/patients", json={"name": {"family": ""}}, headers=headers).status_code == 422
    assert client.post("/patients", data="{", content_type="application/json", headers=headers).status_code == 400
    # not an attempt: refused before the handler
    assert client.post("/patients", json=patient_body(), headers=auth("pmk_unknown")).status_code == 401

    data = cap.collect()
    assert cap.value("patient_mgt.registrations.attempted", data) == 6
    assert cap.value("patient_mgt.registrations.succeeded", data) == 2
    assert cap.value("patient_mgt.registrations.rejected", data, reason="conflict") == 1
    assert cap.value("patient_mgt.registrations.rejected", data, reason="duplicate") == 1
    assert cap.value("patient_mgt.registrations.rejected", data, reason="validation") == 2
    assert cap.value("patient_mgt.registrations.rejected", data) == 4


def test_metrics_are_served_in_prometheus_text_to_a_metrics_reader(client, make_token, cap):
    scraper = make_token("metrics:read")
    assert client.post("/patients", json={"name": {}}, headers=auth(make_token("patients:write"))).status_code == 422
    resp = client.get("/metrics", headers=auth(scraper))
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    text = resp.get_data(as_text=True)
    assert 'patient_mgt_registrations_rejected_total{reason="validation"} 1.0' in text
    assert "patient_mgt_registrations_attempted_total 1.0" in text
    assert 'http_server_request_duration_seconds_count{http_request_method="POST",http_response_status_class="4xx",http_route="/patients"} 1.0' in text
    for gauge in ("patient_mgt_outbox_unpublished ", "patient_mgt_outbox_oldest_age_seconds ", "patient_mgt_notifications_due ",
                  "patient_mgt_lis_quarantined ", "patient_mgt_dead_letters_pending "):
        assert gauge in text
    # the scraper's key reads metrics and nothing else
    assert client.get(f"/patients/{uuid.uuid4()}", headers=auth(scraper)).status_code == 403


def test_metrics_need_the_metrics_scope_or_admin(client, make_token, admin_token, cap):
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers=auth(make_token("patients:read", "patients:write"))).status_code == 403
    assert client.get("/metrics", headers=auth(admin_token)).status_code == 200


def test_metrics_are_a_404_problem_when_prometheus_is_not_configured(client, admin_token, database_url):
    from shared.telemetry import setup

    setup.shutdown()  # the next request configures from settings: OTEL_METRICS_EXPORTER is none
    resp = client.get("/metrics", headers=auth(admin_token))
    assert resp.status_code == 404 and resp.mimetype == "application/problem+json"
    assert "OTEL_METRICS_EXPORTER" in resp.get_json()["detail"]
