"""The concurrency claims, with real concurrent requests to a real functions-framework process
(8 request threads, 8 pooled PostgreSQL connections): one connection per client thread, all
released together by a barrier."""

import threading
import uuid

import pytest
import requests

from tests.http.registry.support import patient_body

pytestmark = pytest.mark.e2e

N = 8


def race(url, send):
    """Run ``send(session)`` on N threads at once (each with its own connection); the N responses."""
    barrier = threading.Barrier(N)
    responses: list = [None] * N

    def run(i):
        with requests.Session() as session:
            session.get(url + "/healthz", timeout=10)  # connect before the barrier
            barrier.wait()
            responses[i] = send(session)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(N)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert all(r is not None for r in responses)
    return responses


@pytest.fixture()
def api(start_fn):
    return start_fn("api", env={"THREADS": str(N), "DB_POOL_SIZE": str(N)}, ready_path="/readyz")


def test_n_concurrent_registrations_with_one_identifier_give_one_201(api, admin_token):
    headers = {"Authorization": f"Bearer {admin_token}"}
    body = patient_body(identifiers=[{"system": "urn:test:national-id", "value": f"NID-{uuid.uuid4().hex}"}])
    responses = race(api.url, lambda s: s.post(f"{api.url}/patients", json=body, headers=headers, timeout=30))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [409] * (N - 1), [r.text for r in responses]
    winner = next(r.json()["id"] for r in responses if r.status_code == 201)
    for refused in (r for r in responses if r.status_code == 409):
        doc = refused.json()
        assert refused.headers["Content-Type"].startswith("application/problem+json")
        assert doc["type"].endswith("/duplicate-identifier") and doc["existing_patient_id"] == winner
    ident = body["identifiers"][0]
    found = requests.get(f"{api.url}/patients", params={"identifier": f"{ident['system']}|{ident['value']}"},
                         headers=headers, timeout=10).json()["items"]
    assert [p["id"] for p in found] == [winner]


def test_n_concurrent_patches_from_one_version_exactly_one_wins(api, admin_token):
    headers = {"Authorization": f"Bearer {admin_token}"}
    pid = requests.post(f"{api.url}/patients", json=patient_body(), headers=headers, timeout=10).json()["id"]
    counter = iter(range(N))
    lock = threading.Lock()

    def send(session):
        with lock:
            phone = f"+1415555{next(counter):04d}"
        return session.patch(f"{api.url}/patients/{pid}", json={"phone": phone},
                             headers={**headers, "If-Match": 'W/"1"', "Content-Type": "application/merge-patch+json"},
                             timeout=30)

    responses = race(api.url, send)
    assert sorted(r.status_code for r in responses) == [200] + [412] * (N - 1), [r.text for r in responses]
    won = next(r.json() for r in responses if r.status_code == 200)
    now = requests.get(f"{api.url}/patients/{pid}", headers=headers, timeout=10)
    assert now.headers["ETag"] == 'W/"2"' and now.json()["phone"] == won["phone"]
    versions = requests.get(f"{api.url}/patients/{pid}/versions", headers=headers, timeout=10).json()["items"]
    assert [v["version"] for v in versions] == [2, 1]


def test_the_same_merge_posted_concurrently_answers_the_same_everywhere(api, admin_token):
    headers = {"Authorization": f"Bearer {admin_token}"}
    source, target = (requests.post(f"{api.url}/patients?allow_duplicate=true", json=patient_body(), headers=headers,
                                    timeout=10).json()["id"] for _ in range(2))
    responses = race(api.url, lambda s: s.post(f"{api.url}/patients/{source}/merge", json={"target_id": target},
                                      headers=headers, timeout=30))
    assert {r.status_code for r in responses} == {200}, [r.text for r in responses]
    bodies = [r.json() for r in responses]
    assert len({(b["merged_at"], str(b["moved"])) for b in bodies}) == 1
    assert all(b["source"]["merged_into"] == target for b in bodies)
