"""A demographic field changed through the API keeps its value until a LIS message written after the
change (MSH-7 later than the edit) arrives; each patient version says which side set each field
last. The LIS messages are Aidbox's real ADT^A08 (tests/fixtures/hl7/aidbox__ADT-A08__1.hl7), sent
with other MSH-7/MSH-10 and names where a test says so. State is read through the API."""

import uuid
from datetime import datetime, timedelta, timezone

from tests.support.lis_fidelity import Api, send

A08 = "hl7/aidbox__ADT-A08__1.hl7"  # MSH-7 2023-12-16 11:00; PID-5 NEWLASTNAME^NEWFIRST^N


def _api(client, make_token) -> Api:
    return Api(client, make_token("lis:read", "patients:read", "patients:write"))


def _as(when: datetime, control: str, family: bytes = b"NEWLASTNAME"):
    stamp = when.astimezone(timezone.utc).strftime("%Y%m%d%H%M%S").encode() + b"+0000"
    return lambda b: (b.replace(b"|20231216110000||ADT^A08", b"|" + stamp + b"||ADT^A08")
                      .replace(b"|MSG-A08-002-", f"|{control}-".encode()).replace(b"|NEWLASTNAME^", b"|" + family + b"^"))


def _patch(api: Api, patient: dict, body: dict) -> dict:
    response = api.client.patch(f"/patients/{patient['id']}", json=body, headers={
        **api.headers, "If-Match": f'"{patient["version"]}"', "Content-Type": "application/merge-patch+json"})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def test_an_older_message_does_not_undo_an_api_edit_and_a_newer_one_does(client, make_token):
    api, run = _api(client, make_token), uuid.uuid4().hex[:8]
    assert send(A08, run).status == "processed"
    patient = api.patient_by_identifier("HOSPITAL", f"P-DEMO-UPDATE-{run}")
    assert patient["name"]["family"] == "NEWLASTNAME"
    # (The LIS sent country "USA"; the API takes ISO 3166 alpha-2, so the edit mends that too.)
    edited = _patch(api, patient, {"name": {"family": "Corrected", "given": ["Newfirst"]},
                                   "address": {**patient["address"], "country": "US"}})
    assert edited["name"]["family"] == "Corrected"

    # Written before the edit (its MSH-7 is 2023): the name stays; the rest of it still applies.
    older = send(A08, run, edit=lambda b: _as(datetime(2024, 1, 5, tzinfo=timezone.utc), "OLDER", b"STALE")(b)
                 .replace(b"|19900101|F|", b"|19900102|F|").replace(b"456 New Address", b"789 Later Street"))
    stored = api.message(older.message_id)
    assert stored["status"] == "processed"
    assert {"api_edit_newer:name", "api_edit_newer:address"} <= set(stored["warnings"])
    now = api.get(f"/patients/{patient['id']}")
    assert (now["name"]["family"], now["address"]["line"], now["birth_date"]) == (
        "Corrected", ["456 New Address"], "1990-01-02")

    versions = api.get(f"/patients/{patient['id']}/versions", resource_type="patient")["items"]
    latest = versions[0]["field_sources"]
    assert (latest["name"]["source"], latest["address"]["source"], latest["birth_date"]["source"]) == ("api", "api", "lis")
    assert latest["birth_date"]["message_id"] == str(older.message_id)
    assert [v["field_sources"]["name"]["source"] for v in versions if v["change"] == "update"] == ["api"]

    # Written after the edit: the LIS value wins again.
    newer = send(A08, run, edit=_as(datetime.now(timezone.utc) + timedelta(minutes=2), "NEWER", b"RENAMED"))
    assert "api_edit_newer:name" not in api.message(newer.message_id)["warnings"]
    assert api.get(f"/patients/{patient['id']}")["name"]["family"] == "RENAMED"
    versions = api.get(f"/patients/{patient['id']}/versions", resource_type="patient")["items"]
    assert versions[0]["change"] == "lis-update"
    assert versions[0]["field_sources"]["name"] == {
        "source": "lis", "at": versions[0]["field_sources"]["name"]["at"], "message_id": str(newer.message_id)}


def test_fields_the_api_did_not_change_follow_the_lis(client, make_token):
    api, run = _api(client, make_token), uuid.uuid4().hex[:8]
    send(A08, run)
    patient = api.patient_by_identifier("HOSPITAL", f"P-DEMO-UPDATE-{run}")
    _patch(api, patient, {"email": "newfirst@example.org", "address": {**patient["address"], "country": "US"}})
    later = send(A08, run, edit=_as(datetime(2024, 2, 1, tzinfo=timezone.utc), "LATER", b"LASTNAME2"))
    assert "api_edit_newer:name" not in api.message(later.message_id)["warnings"]
    now = api.get(f"/patients/{patient['id']}")
    assert (now["name"]["family"], now["email"]) == ("LASTNAME2", "newfirst@example.org")
    sources = api.get(f"/patients/{patient['id']}/versions", resource_type="patient")["items"][0]["field_sources"]
    assert (sources["name"]["source"], sources["email"]["source"]) == ("lis", "api")
