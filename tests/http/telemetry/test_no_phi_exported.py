"""A scenario with distinctive PHI values through the api, notify and lis_consumer functions: none
of them may appear in any exported datum — span names, attributes, events, resources, metric
names, labels or the Prometheus text."""

import random
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from functions_framework import create_app

from tests.conftest import auth
from tests.support import hl7_gen
from tests.support.lis_delivery import lis_event, push

ROOT = Path(__file__).resolve().parents[3]
PHI = {
    "family": "Xylophanesq",
    "given": "Quixotelda",
    "birth_date": "1953-04-17",
    "phone": "+14155550123",
    "email": "quixotelda.xylo@example.org",
    "identifier": "PHI-ID-99317",
    "street": "77 Wunderbarqq Lane",
    "lis_family": "Brambleworthy",
    "lis_mrn": "LISMRN7741",
}
FORMS = {
    "birth_date_compact": "19530417",
    "phone_digits": "4155550123",
}


@pytest.fixture(scope="module")
def lis_client(database_url):
    app = create_app(target="lis_consumer", source=str(ROOT / "functions" / "lis_consumer" / "main.py"), signature_type="cloudevent")
    return app.test_client()


def _body(**extra):
    return {
        "name": {"family": PHI["family"], "given": [PHI["given"]]}, "birth_date": PHI["birth_date"], "phone": PHI["phone"],
        "email": PHI["email"], "identifiers": [{"system": "urn:test:phi", "value": PHI["identifier"]}],
        "address": {"line": [PHI["street"]], "city": "Springfield", "state": "OR", "postal_code": "97403", "country": "US"},
        "communication": {"email": True, "sms": True}, **extra,
    }


def _lis_patient():
    base = hl7_gen.make_patient(random.Random(3), "PHI", 1)
    return hl7_gen.GenPatient(**{**base.__dict__, "mrn": PHI["lis_mrn"], "family": PHI["lis_family"], "given": PHI["given"],
                                 "phone": PHI["phone"], "street": PHI["street"]})


def test_no_phi_value_appears_in_any_exported_datum(client, make_token, lis_client, cap, notify_sink):
    admin, scraper = auth(make_token("admin")), auth(make_token("metrics:read"))
    # api: a registration (notified over e-mail and SMS), its conflicts, validation failures carrying PHI
    created = client.post("/patients", json=_body(), headers=admin)
    assert created.status_code == 201
    pid = created.get_json()["id"]
    assert client.post("/patients", json=_body(), headers=admin).status_code == 409
    assert client.post("/patients", json=_body(identifiers=[]), headers=admin).status_code == 409
    assert client.post("/patients", json=_body(phone=f"call {PHI['given']}", birth_date="2999-01-01"),
                       headers=admin).status_code == 422
    assert client.get(f"/patients?family={PHI['family']}&birth_date={PHI['birth_date']}", headers=admin).status_code == 200
    assert client.get(f"/patients/{pid}", headers=admin).status_code == 200
    assert client.get(f"/{PHI['family']}/{PHI['email']}", headers=admin).status_code == 404
    # lis_consumer: an ADT carrying PHI, a redelivery, an unparseable message quoting PHI, a raw push
    patient = _lis_patient()
    adt = hl7_gen.adt(patient, "A04", "LAB-PHI", uuid.uuid4().hex[:20], datetime.now(timezone.utc) - timedelta(minutes=3))
    headers, body = lis_event(adt)
    assert lis_client.post("/", headers=headers, data=body).status_code == 200
    assert lis_client.post("/", headers=headers, data=body).status_code == 200
    garbage = f"PID|1||{PHI['lis_mrn']}||{PHI['lis_family']}^{PHI['given']}||{FORMS['birth_date_compact']}".encode()
    headers, body = lis_event(garbage)
    assert lis_client.post("/", headers=headers, data=body).status_code == 200
    headers, body = push(adt.replace(b"ADT^A04", b"ADT^A08"))
    assert lis_client.post("/", headers=headers, data=body).status_code == 200

    prometheus = client.get("/metrics", headers=scraper)
    assert prometheus.status_code == 200
    spans = cap.spans()
    metrics = cap.collect()
    # the scenario did produce telemetry from all three functions
    names = {s.name for s in spans}
    assert {"POST /patients", "GET /patients/<uuid:patient_id>", "GET (unmatched)"} <= names
    assert any(n.startswith("notify ") for n in names) and any(n.startswith("lis-consumer ") for n in names)
    assert cap.value("patient_mgt.notifications", metrics) >= 1
    assert cap.value("patient_mgt.lis.messages", metrics) == 4

    exported = "\n".join([*(s.to_json() for s in spans), metrics.to_json(), prometheus.get_data(as_text=True)]).lower()
    leaked = {key: value for key, value in {**PHI, **FORMS}.items() if value.lower() in exported}
    assert not leaked, f"PHI in exported telemetry: {sorted(leaked)}"
