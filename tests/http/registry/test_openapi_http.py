"""GET /openapi.json is public and is the document generated from the route table."""

from shared.http.openapi import build_document
from shared.http.routing import ROUTES


def test_openapi_json_is_public_and_complete(client):
    resp = client.get("/openapi.json")
    assert resp.status_code == 200 and resp.mimetype == "application/json"
    doc = resp.get_json()
    assert doc == build_document()
    documented = {(method.upper(), path) for path, ops in doc["paths"].items() for method in ops}
    assert len(documented) == len(ROUTES)
    for required in [("POST", "/patients"), ("GET", "/patients"), ("PATCH", "/patients/{patient_id}"),
                     ("DELETE", "/patients/{patient_id}"), ("GET", "/patients/{patient_id}/duplicates"),
                     ("POST", "/patients/{patient_id}/merge"), ("POST", "/patients/{patient_id}/unmerge"),
                     ("POST", "/patients/{patient_id}/duplicates/{candidate_id}/review"), ("GET", "/patients/{patient_id}/versions"),
                     ("POST", "/patients/{patient_id}/history"), ("GET", "/patients/{patient_id}/history"),
                     ("PATCH", "/patients/{patient_id}/history/{entry_id}"), ("GET", "/patients/{patient_id}/orders"),
                     ("POST", "/patients/{patient_id}/orders"), ("GET", "/orders/{order_id}"), ("GET", "/healthz"),
                     ("GET", "/readyz"), ("GET", "/audit"), ("GET", "/openapi.json")]:
        assert required in documented


def test_every_etag_location_and_last_modified_a_response_carries_is_declared(client, admin_token):
    """Walk the routes that answer with those headers and compare each answer with the document."""
    from tests.conftest import auth  # noqa: PLC0415
    from tests.http.registry.support import patient_body  # noqa: PLC0415

    doc = client.get("/openapi.json").get_json()
    h = auth(admin_token)
    seen = []

    def check(method, path, resp, status):
        assert resp.status_code == status, resp.get_data(as_text=True)
        declared = doc["paths"][path][method.lower()]["responses"][str(status)].get("headers", {})
        sent = {name for name in ("ETag", "Location", "Last-Modified") if name in resp.headers}
        assert sent <= set(declared), f"{method} {path} {status}: sends {sorted(sent - set(declared))} undeclared"
        seen.append((method, path, frozenset(sent)))
        return resp

    created = check("POST", "/patients", client.post("/patients", json=patient_body(), headers=h), 201)
    pid = created.get_json()["id"]
    check("GET", "/patients/{patient_id}", client.get(f"/patients/{pid}", headers=h), 200)
    patched = check("PATCH", "/patients/{patient_id}", client.patch(
        f"/patients/{pid}", json={"phone": "+14155550123"}, headers={**h, "If-Match": created.headers["ETag"]}), 200)
    entry = check("POST", "/patients/{patient_id}/history", client.post(
        f"/patients/{pid}/history", json={"category": "note", "notes": "openapi headers"}, headers=h), 201)
    eid = entry.get_json()["id"]
    check("GET", "/patients/{patient_id}/history/{entry_id}", client.get(f"/patients/{pid}/history/{eid}", headers=h), 200)
    check("PATCH", "/patients/{patient_id}/history/{entry_id}", client.patch(
        f"/patients/{pid}/history/{eid}", data='{"notes": "changed"}', content_type="application/merge-patch+json",
        headers={**h, "If-Match": entry.headers["ETag"]}), 200)
    order = check("POST", "/patients/{patient_id}/orders", client.post(
        f"/patients/{pid}/orders", json={"code": {"system": "http://loinc.org", "code": "2345-7"}}, headers=h), 201)
    check("GET", "/orders/{order_id}", client.get(f"/orders/{order.get_json()['id']}", headers=h), 200)
    check("GET", "/fhir/Patient/{patient_id}", client.get(f"/fhir/Patient/{pid}", headers=h), 200)
    check("DELETE", "/patients/{patient_id}", client.delete(
        f"/patients/{pid}", headers={**h, "If-Match": patched.headers["ETag"]}), 204)
    assert all("ETag" in sent for _m, _p, sent in seen)


def test_patch_lists_both_accepted_media_types():
    doc = build_document()
    for path in ("/patients/{patient_id}", "/patients/{patient_id}/history/{entry_id}"):
        content = doc["paths"][path]["patch"]["requestBody"]["content"]
        assert set(content) == {"application/merge-patch+json", "application/json"}
        assert content["application/json"] == content["application/merge-patch+json"]
