"""Register, read, change and deactivate over HTTP (functions-framework test client)."""

import json
import uuid
from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from shared.db import unit_of_work
from shared.events import catalog
from shared.models import Patient
from tests.conftest import auth
from tests.http.registry.support import (
    assert_problem, audit_actions, error_fields, events_for, patient_body, unique_family,
)

MERGE_PATCH = "application/merge-patch+json"


def create(client, token, **overrides):
    resp = client.post("/patients", json=patient_body(**overrides), headers=auth(token))
    assert resp.status_code == 201, resp.get_data(as_text=True)
    return resp.get_json()


def patch(client, token, pid, body, etag='W/"1"', content_type=MERGE_PATCH):
    headers = {**auth(token), "Content-Type": content_type}
    if etag is not None:
        headers["If-Match"] = etag
    return client.patch(f"/patients/{pid}", data=body if isinstance(body, (bytes, str)) else json.dumps(body),
                        headers=headers)


def test_patch_is_a_merge_patch_under_if_match(client, admin_token):
    created = create(client, admin_token, phone="+14155550100",
                     address={"line": ["1 Main St"], "city": "Sevilla", "state": "AN", "postal_code": "41001", "country": "ES"})
    pid = created["id"]
    resp = patch(client, admin_token, pid, {"phone": None, "address": {"city": "Cádiz"}, "name": {"given": ["Lucía", "Ana"]}})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.headers["ETag"] == 'W/"2"'
    doc = resp.get_json()
    assert doc["phone"] is None and doc["address"]["city"] == "Cádiz" and doc["address"]["line"] == ["1 Main St"]
    assert doc["name"] == {**created["name"], "given": ["Lucía", "Ana"]}
    assert client.get(f"/patients/{pid}", headers=auth(admin_token)).get_json() == doc
    assert events_for(pid)[-1] == (catalog.PATIENT_UPDATED, {"patient_id": pid, "version": 2,
                                                             "changed": ["address", "name", "phone"]})
    assert ("patient.update", "success") in audit_actions(pid)
    # plain application/json is accepted too
    assert patch(client, admin_token, pid, {"sex": "female"}, 'W/"2"', "application/json").status_code == 200


def test_if_match_is_required_and_checked(client, admin_token):
    pid = create(client, admin_token)["id"]
    assert_problem(patch(client, admin_token, pid, {"sex": "male"}, etag=None), 428)
    assert_problem(patch(client, admin_token, pid, {"sex": "male"}, etag="garbage"), 412)
    assert_problem(patch(client, admin_token, pid, {"sex": "male"}, etag='W/"7"'), 412)
    assert_problem(client.delete(f"/patients/{pid}", headers=auth(admin_token)), 428)
    assert_problem(client.delete(f"/patients/{pid}", headers={**auth(admin_token), "If-Match": '"2"'}), 412)
    got = client.get(f"/patients/{pid}", headers=auth(admin_token)).get_json()
    assert got["version"] == 1 and got["sex"] == "unknown" and got["status"] == "active"
    assert [a for a in audit_actions(pid) if a[1] != "success"] == [
        ("patient.update", "precondition-required"), ("patient.update", "precondition-failed"),
        ("patient.update", "precondition-failed"), ("patient.deactivate", "precondition-required"),
        ("patient.deactivate", "precondition-failed")]


@pytest.mark.parametrize(
    ("body", "content_type", "status", "fields"),
    [
        ({"id": str(uuid.uuid4())}, MERGE_PATCH, 422, {"id"}),
        ({"mrn": "123"}, MERGE_PATCH, 422, {"mrn"}),
        ({"version": 9}, MERGE_PATCH, 422, {"version"}),
        ({"status": "merged"}, MERGE_PATCH, 422, {"status"}),
        ({"merged_into": str(uuid.uuid4())}, MERGE_PATCH, 422, {"merged_into"}),
        ({"phone": "0034 600"}, MERGE_PATCH, 422, {"phone"}),
        ({"email": "nobody"}, MERGE_PATCH, 422, {"email"}),
        ({"birth_date": "2023-02-30"}, MERGE_PATCH, 422, {"birth_date"}),
        ({"birth_date": None}, MERGE_PATCH, 422, {"birth_date"}),
        ({"name": {"family": "x" * 201}}, MERGE_PATCH, 422, {"name.family"}),
        ({"name": {"family": "Bad\u0007"}}, MERGE_PATCH, 422, {"name.family"}),
        ({"nickname": "Lu"}, MERGE_PATCH, 422, {"nickname"}),
        ({"identifiers": [{"system": "urn:patient-mgt:mrn", "value": "100000009"}]}, MERGE_PATCH, 422, {"identifiers.0"}),
        ([{"op": "replace"}], MERGE_PATCH, 422, {"(body)"}),
        ("{nope", MERGE_PATCH, 400, set()),
        ({"sex": "male"}, "text/plain", 415, set()),
    ],
)
def test_bad_patches_get_precise_problems_and_change_nothing(client, admin_token, body, content_type, status, fields):
    pid = create(client, admin_token)["id"]
    before = client.get(f"/patients/{pid}", headers=auth(admin_token)).get_json()
    doc = assert_problem(patch(client, admin_token, pid, body, content_type=content_type), status)
    assert error_fields(doc) == fields
    assert client.get(f"/patients/{pid}", headers=auth(admin_token)).get_json() == before
    assert [t for t, _ in events_for(pid)] == [catalog.PATIENT_REGISTERED]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"birth_date": "2023-02-30"}, "birth_date"),
        ({"birth_date": (date.today() + timedelta(days=1)).isoformat()}, "birth_date"),
        ({"name": {"family": "x" * 201}}, "name.family"),
        ({"name": {"family": "Ok", "given": ["Tab\tbed"]}}, "name.given.0"),
        ({"phone": "+1 415 555"}, "phone"),
        ({"email": "a@b"}, "email"),
        ({"favourite_colour": "blue"}, "favourite_colour"),
    ],
)
def test_bad_registrations_get_precise_problems_and_create_nothing(client, admin_token, overrides, field):
    family = unique_family()
    body = patient_body(**overrides)
    if "name" not in overrides:
        body["name"]["family"] = family
    doc = assert_problem(client.post("/patients", json=body, headers=auth(admin_token)), 422)
    assert field in error_fields(doc)
    with unit_of_work() as uow:
        assert uow.session.scalar(sa.select(sa.func.count()).select_from(Patient).where(Patient.family == family)) == 0


def test_non_uuid_ids_are_404_not_500(client, admin_token):
    for path in ("/patients/123", "/patients/not-a-uuid/history", "/patients/x/orders", "/orders/1",
                 "/patients/x/versions", "/patients/x/duplicates", f"/patients/{uuid.uuid4()}/history/zzz"):
        assert_problem(client.get(path, headers=auth(admin_token)), 404)
    assert_problem(patch(client, admin_token, "nope", {"sex": "male"}), 404)


def test_deactivate_then_reactivate(client, admin_token):
    pid = create(client, admin_token)["id"]
    resp = client.delete(f"/patients/{pid}", headers={**auth(admin_token), "If-Match": 'W/"1"'})
    assert resp.status_code == 204 and resp.headers["ETag"] == 'W/"2"' and resp.get_data() == b""
    got = client.get(f"/patients/{pid}", headers=auth(admin_token))
    assert got.get_json()["status"] == "inactive" and got.headers["ETag"] == 'W/"2"'
    # deleting again changes nothing
    assert client.delete(f"/patients/{pid}", headers={**auth(admin_token), "If-Match": 'W/"2"'}).status_code == 204
    assert client.get(f"/patients/{pid}", headers=auth(admin_token)).get_json()["version"] == 2
    assert [t for t, _ in events_for(pid)] == [catalog.PATIENT_REGISTERED, catalog.PATIENT_DEACTIVATED]
    assert patch(client, admin_token, pid, {"status": "active"}, 'W/"2"').get_json()["status"] == "active"


def test_writes_need_the_write_scope(client, admin_token, make_token):
    reader = make_token("patients:read")
    pid = create(client, admin_token)["id"]
    assert_problem(patch(client, reader, pid, {"sex": "male"}), 403)
    assert_problem(client.delete(f"/patients/{pid}", headers={**auth(reader), "If-Match": 'W/"1"'}), 403)
    assert client.get(f"/patients/{pid}", headers=auth(reader)).status_code == 200
    assert_problem(client.get(f"/patients/{pid}", headers=auth(make_token("audit:read"))), 403)
