"""The api as a real functions-framework (gunicorn) process on 127.0.0.1."""

import json
import uuid

import pytest
import requests


pytestmark = pytest.mark.e2e


def test_register_and_read_over_real_http(start_fn, admin_token):
    api = start_fn("api", ready_path="/readyz")
    headers = {"Authorization": f"Bearer {admin_token}"}
    assert requests.get(f"{api.url}/patients/{uuid.uuid4()}", timeout=5).status_code == 401
    resp = requests.post(f"{api.url}/patients", headers=headers, timeout=5,
                         json={"name": {"family": "Okafor", "given": ["Chidi"]}, "birth_date": "1975-01-02"})
    assert resp.status_code == 201
    pid = resp.json()["id"]
    got = requests.get(f"{api.url}{resp.headers['Location']}", headers=headers, timeout=5)
    assert got.status_code == 200 and got.json()["id"] == pid and got.headers["ETag"] == 'W/"1"'
    # every log line is one JSON object in Cloud Logging's shape
    lines = [json.loads(line) for line in api.logs().splitlines() if line.startswith("{")]
    assert lines and all("severity" in line and "message" in line for line in lines)
    assert "Okafor" not in api.logs()


def test_readiness_is_503_problem_when_the_database_is_unreachable(start_fn, closed_port):
    api = start_fn("api", env={"DATABASE_URL": f"postgresql+pg8000://postgres@127.0.0.1:{closed_port}/none"})
    resp = requests.get(f"{api.url}/readyz", timeout=10)
    assert resp.status_code == 503
    assert resp.headers["Content-Type"].startswith("application/problem+json")
    assert resp.headers["Retry-After"]
    assert requests.get(f"{api.url}/healthz", timeout=5).status_code == 200
