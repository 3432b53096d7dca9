"""GET /metrics counts the probable-duplicate flags waiting for review: a PATCH that makes a
duplicate raises it, a review lowers it."""

import json
import re

from shared.telemetry import queues
from tests.conftest import auth
from tests.http.telemetry.conftest import patient_body

GAUGE = re.compile(r"^patient_mgt_duplicates_open (\S+)$", re.MULTILINE)


def _open_flags(client, token) -> float:
    queues.forget()
    resp = client.get("/metrics", headers=auth(token))
    assert resp.status_code == 200
    [value] = GAUGE.findall(resp.get_data(as_text=True))
    return float(value)


def test_open_duplicate_flags_are_a_gauge(client, admin_token, cap):
    first = client.post("/patients", json=patient_body(), headers=auth(admin_token)).get_json()
    other = client.post("/patients", json=patient_body(), headers=auth(admin_token)).get_json()
    before = _open_flags(client, admin_token)
    resp = client.patch(f"/patients/{other['id']}", data=json.dumps({"name": first["name"]}), headers={
        **auth(admin_token), "Content-Type": "application/merge-patch+json", "If-Match": 'W/"1"'})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert _open_flags(client, admin_token) == before + 1
    reviewed = client.post(f"/patients/{other['id']}/duplicates/{first['id']}/review", json={"decision": "not_duplicate"},
                           headers=auth(admin_token))
    assert reviewed.status_code == 200
    assert _open_flags(client, admin_token) == before
