"""What functions-framework's Flask app answers by itself is problem+json on all four functions
(shared.http.function_app): wrong method or path, an event the CloudEvents SDK cannot read, a
function that raises. Nothing in those answers quotes the request. The CloudEvent functions answer
the api's probes, /healthz and /readyz."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from functions_framework import create_app

ROOT = Path(__file__).resolve().parents[2]
PROBLEM = "application/problem+json"
MARK = "Zyxwvut Qwerty"  # stands for patient data in a request: never echoed
CONSUMERS = ["lis_consumer", "notify", "jobs"]
TARGETS = ["api", *CONSUMERS]


@pytest.fixture(scope="module")
def apps(database_url):
    return {t: create_app(target=t, source=str(ROOT / "functions" / t / "main.py"),
                          signature_type="http" if t == "api" else "cloudevent") for t in TARGETS}


def problem(resp, status: int) -> dict:
    text = resp.get_data(as_text=True)
    assert resp.status_code == status, text[:300]
    assert resp.mimetype == PROBLEM, text[:300]
    assert "<html" not in text.lower() and MARK not in text
    doc = json.loads(text)
    assert doc["status"] == status and doc["type"].startswith("https://") and doc["title"] and doc["detail"]
    return doc


@pytest.mark.parametrize("target", CONSUMERS)
@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
@pytest.mark.parametrize("path", ["/", "/anything", "/favicon.ico"])
def test_a_consumer_answers_a_method_it_does_not_take_with_a_405_problem(apps, target, method, path):
    resp = apps[target].test_client().open(path, method=method, headers={"X-Mark": MARK}, data=MARK)
    assert problem(resp, 405)["type"].endswith("/method-not-allowed")
    assert resp.headers["Allow"] == "POST"


@pytest.mark.parametrize("path", ["/favicon.ico", "/robots.txt"])
def test_the_api_answers_its_framework_paths_with_a_404_problem(apps, path):
    problem(apps["api"].test_client().get(path, headers={"X-Mark": MARK}), 404)


def _ce_headers(**overrides: str) -> dict[str, str]:
    return {"ce-specversion": "1.0", "ce-id": "id-1", "ce-source": "/tests", "ce-type": "org.patientmgt.test.v1",
            "Content-Type": "application/json", **overrides}


# (headers, body, status): the status is the framework's (415 when it fell back to reading the body
# as a legacy event and the media type was not JSON); the body is always a problem.
UNREADABLE = [
    pytest.param(_ce_headers(**{"ce-specversion": "9.9"}), json.dumps({"n": MARK}).encode(), 400, id="binary-specversion-9.9"),
    pytest.param({"Content-Type": "application/cloudevents+json"},
                 json.dumps({"specversion": "9.9", "id": "1", "source": "/t", "type": "t", "data": MARK}).encode(), 400,
                 id="structured-specversion-9.9"),
    pytest.param(_ce_headers(**{"ce-specversion": "9.9", "Content-Type": "text/plain"}), MARK.encode(), 415,
                 id="binary-9.9-text"),
    pytest.param(_ce_headers(), b'{"a":' * 1_000 + b"1" + b"}" * 1_000, 400, id="binary-json-1000-deep"),
]


@pytest.mark.parametrize("target", ["notify", "jobs"])
@pytest.mark.parametrize(("headers", "body", "status"), UNREADABLE)
def test_an_event_the_sdk_cannot_read_is_a_4xx_problem_that_quotes_nothing(apps, target, headers, body, status):
    problem(apps[target].test_client().post("/", headers={**headers, "X-Mark": MARK}, data=body), status)


@pytest.mark.parametrize(("headers", "body", "status"), UNREADABLE[:3])
def test_the_lis_consumer_answers_an_unsupported_specversion_with_a_problem(apps, headers, body, status):
    resp = apps["lis_consumer"].test_client().post("/", headers={**headers, "X-Mark": MARK}, data=body)
    problem(resp, status)


@pytest.mark.parametrize("target", CONSUMERS)
def test_a_consumer_answers_the_probes(apps, target):
    client = apps[target].test_client()
    health = client.get("/healthz")
    assert health.status_code == 200 and health.get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.get_json() == {"status": "ready"}
    assert client.head("/healthz").status_code == 200
    problem(client.post("/healthz", data=MARK, headers={"Content-Type": "text/plain"}), 400)  # a POST is an event


@pytest.mark.parametrize("target", TARGETS)
def test_a_function_that_raises_is_a_generic_500_problem(apps, target):
    """functions-framework's crash handler answered the exception's text; the installed one answers
    nothing of it."""
    app = apps[target]
    with app.test_request_context("/"):
        resp = app.make_response(app.handle_exception(RuntimeError(MARK)))
    assert problem(resp, 500)["type"].endswith("/internal-error")
