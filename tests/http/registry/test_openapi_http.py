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
                     ("POST", "/patients/{patient_id}/merge"), ("GET", "/patients/{patient_id}/versions"),
                     ("POST", "/patients/{patient_id}/history"), ("GET", "/patients/{patient_id}/history"),
                     ("PATCH", "/patients/{patient_id}/history/{entry_id}"), ("GET", "/patients/{patient_id}/orders"),
                     ("POST", "/patients/{patient_id}/orders"), ("GET", "/orders/{order_id}"), ("GET", "/healthz"),
                     ("GET", "/readyz"), ("GET", "/audit"), ("GET", "/openapi.json")]:
        assert required in documented
