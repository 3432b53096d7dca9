"""A whole scenario with distinctive PHI values: none of them may appear in any log line."""

import logging
import uuid

from shared.log import CloudLoggingFormatter
from tests.conftest import auth

PHI = {
    "family": "Zyxwvutsrq",
    "given": "Qwertyuiop",
    "birth_date": "1961-07-29",
    "phone": "+14155559876",
    "email": "qwertyuiop.zyx@example.org",
    "identifier": "ID-PHI-8675309",
    "street": "742 Evergreenqq Terrace",
}


def test_no_phi_in_logs_across_a_scenario(client, make_token, caplog):
    caplog.set_level(logging.DEBUG)
    admin = make_token("admin")
    reader = make_token("patients:read")
    body = {
        "name": {"family": PHI["family"], "given": [PHI["given"]]},
        "birth_date": PHI["birth_date"],
        "phone": PHI["phone"],
        "email": PHI["email"],
        "identifiers": [{"system": "urn:test", "value": PHI["identifier"]}],
        "address": {"line": [PHI["street"]], "city": "Springfield", "state": "OR", "postal_code": "97403", "country": "US"},
    }
    created = client.post("/patients", json=body, headers=auth(admin))
    assert created.status_code == 201
    pid = created.get_json()["id"]
    assert client.get(f"/patients/{pid}", headers=auth(reader)).status_code == 200
    # failures with PHI in the request: duplicate identifier, validation, forbidden
    assert client.post("/patients", json=body, headers=auth(admin)).status_code == 409
    bad = {**body, "phone": f"call {PHI['given']}", "birth_date": "2999-01-01"}
    assert client.post("/patients", json=bad, headers=auth(admin)).status_code == 422
    assert client.post("/patients", json=body, headers=auth(reader)).status_code == 403
    assert client.get(f"/patients/{uuid.uuid4()}", headers=auth(reader)).status_code == 404

    formatter = CloudLoggingFormatter()
    text = "\n".join(formatter.format(r) for r in caplog.records)
    assert "request" in text  # the scenario did log
    for value in PHI.values():
        assert value not in text, f"PHI value leaked into logs: {value[:3]}…"
