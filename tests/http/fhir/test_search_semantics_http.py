"""FHIR search semantics on every type: comma = OR, repeated = AND, _id, subject, _count=0, _summary=count,
_total, _lastUpdated, _sort and the token forms system| and |code."""

import uuid
from datetime import datetime, timedelta, timezone
from urllib.parse import quote

from tests.conftest import auth
from tests.http.fhir.support import add_order, fhir_ok, rest_patient, unique_family

GLUCOSE = {"code_system": "LN", "code": "2345-7", "code_display": "Glucose", "value_type": "NM", "value": "5.1",
           "units": "mmol/L", "status": "F"}
LOCAL = {"code_system": None, "code": "X-" + uuid.uuid4().hex[:8], "code_display": "Local", "value_type": "ST",
         "value": "seen", "status": "F"}


def _ids(doc):
    return [e["resource"]["id"] for e in doc.get("entry", [])]


def test_comma_is_or_and_repeat_is_and_on_patients(client, admin_token, make_token):
    token = make_token("patients:read")
    a = rest_patient(client, admin_token, name={"family": unique_family(), "given": ["Ada"]})
    b = rest_patient(client, admin_token, name={"family": unique_family(), "given": ["Bo"]})
    ida, idb = (next(i["value"] for i in p["identifiers"] if i["system"] == "urn:test:hospital") for p in (a, b))
    fa, fb = a["name"]["family"], b["name"]["family"]
    doc = fhir_ok(client.get(f"/fhir/Patient?identifier=urn:test:hospital|{ida},urn:test:hospital|{idb}", headers=auth(token)))
    assert doc["total"] == 2 and set(_ids(doc)) == {a["id"], b["id"]}
    assert set(_ids(fhir_ok(client.get(f"/fhir/Patient?family={fa},{fb}", headers=auth(token))))) == {a["id"], b["id"]}
    assert _ids(fhir_ok(client.get(f"/fhir/Patient?family={fa},{fb}&given=ada", headers=auth(token)))) == [a["id"]]
    assert fhir_ok(client.get(f"/fhir/Patient?family={fa}&family={fb}", headers=auth(token)))["total"] == 0  # AND
    assert _ids(fhir_ok(client.get(f"/fhir/Patient?name={fa}&name=ada", headers=auth(token)))) == [a["id"]]
    both = fhir_ok(client.get(f"/fhir/Patient?_id={a['id']},{b['id']},not-ours", headers=auth(token)))
    assert set(_ids(both)) == {a["id"], b["id"]}
    # system| : any identifier in the system; |value: an identifier without a system (none here)
    assert a["id"] in _ids(fhir_ok(client.get(f"/fhir/Patient?identifier=urn:test:hospital|&family={fa}", headers=auth(token))))
    assert fhir_ok(client.get(f"/fhir/Patient?identifier=|{ida}", headers=auth(token)))["total"] == 0


def test_count_zero_summary_count_and_total_none(client, admin_token, make_token):
    token = make_token("patients:read")
    family = unique_family()
    for _ in range(3):
        rest_patient(client, admin_token, name={"family": family, "given": ["C"]})
    for query in ("_count=0", "_summary=count"):
        doc = fhir_ok(client.get(f"/fhir/Patient?family={family}&{query}", headers=auth(token)))
        assert doc["total"] == 3 and "entry" not in doc and [lk["relation"] for lk in doc["link"]] == ["self"]
    doc = fhir_ok(client.get(f"/fhir/Patient?family={family}&_total=none", headers=auth(token)))
    assert "total" not in doc and len(doc["entry"]) == 3


def test_last_updated_and_sort(client, admin_token, make_token):
    token = make_token("patients:read")
    family = unique_family()
    first = rest_patient(client, admin_token, name={"family": family + "b", "given": ["C"]})
    second = rest_patient(client, admin_token, name={"family": family + "a", "given": ["C"]})
    by_name = _ids(fhir_ok(client.get(f"/fhir/Patient?family={family}", headers=auth(token))))
    assert by_name == [second["id"], first["id"]]
    newest = _ids(fhir_ok(client.get(f"/fhir/Patient?family={family}&_sort=-_lastUpdated", headers=auth(token))))
    assert newest == [second["id"], first["id"]]
    oldest = fhir_ok(client.get(f"/fhir/Patient?family={family}&_sort=_lastUpdated&_count=1", headers=auth(token)))
    assert _ids(oldest) == [first["id"]]
    nxt = next(lk["url"] for lk in oldest["link"] if lk["relation"] == "next")
    assert _ids(fhir_ok(client.get(nxt[nxt.index("/fhir/"):], headers=auth(token)))) == [second["id"]]
    since = quote(second["updated_at"])
    assert _ids(fhir_ok(client.get(f"/fhir/Patient?family={family}&_lastUpdated=ge{since}", headers=auth(token)))) == [second["id"]]
    assert _ids(fhir_ok(client.get(f"/fhir/Patient?family={family}&_lastUpdated=lt{since}", headers=auth(token)))) == [first["id"]]
    tomorrow = (datetime.now(timezone.utc) + timedelta(days=1)).date().isoformat()
    assert fhir_ok(client.get(f"/fhir/Patient?family={family}&_lastUpdated=gt{tomorrow}", headers=auth(token)))["total"] == 0
    assert fhir_ok(client.get(f"/fhir/Patient?family={family}&_lastUpdated=ge2000&_lastUpdated=lt{tomorrow}",
                              headers=auth(token)))["total"] == 2


def test_lab_searches_by_subject_code_alone_and_token_forms(client, admin_token, make_token):
    token = make_token("patients:read")
    p, q = rest_patient(client, admin_token), rest_patient(client, admin_token)
    local = {**LOCAL, "code": "X-" + uuid.uuid4().hex[:8]}
    order_p = add_order(p["id"], results=[GLUCOSE, local])
    order_q = add_order(q["id"], results=[local])
    by_subject = fhir_ok(client.get(f"/fhir/Observation?subject=Patient/{p['id']}", headers=auth(token)))
    assert by_subject["total"] == 2
    # code alone, across patients; |code is a code without a system; system| any code in it
    alone = fhir_ok(client.get(f"/fhir/Observation?code={local['code']}", headers=auth(token)))
    assert alone["total"] == 2 and {e["resource"]["subject"]["reference"] for e in alone["entry"]} == {
        f"Patient/{p['id']}", f"Patient/{q['id']}"}
    assert fhir_ok(client.get(f"/fhir/Observation?code=|{local['code']}", headers=auth(token)))["total"] == 2
    as_sent = fhir_ok(client.get(f"/fhir/Observation?code=urn:patient-mgt:local-code|{local['code']}", headers=auth(token)))
    assert as_sent["total"] == 2 and as_sent["entry"][0]["resource"]["code"]["coding"][0]["system"] == "urn:patient-mgt:local-code"
    assert fhir_ok(client.get(f"/fhir/Observation?code=http://loinc.org|{local['code']}", headers=auth(token)))["total"] == 0
    in_loinc = fhir_ok(client.get(f"/fhir/Observation?patient={p['id']}&code=http://loinc.org|", headers=auth(token)))
    assert [e["resource"]["code"]["coding"][0]["code"] for e in in_loinc["entry"]] == ["2345-7"]
    either = fhir_ok(client.get(f"/fhir/Observation?patient={p['id']},{q['id']}&code={local['code']}", headers=auth(token)))
    assert either["total"] == 2
    assert fhir_ok(client.get(f"/fhir/Observation?patient={p['id']}&patient={q['id']}", headers=auth(token)))["total"] == 0
    orders = fhir_ok(client.get(f"/fhir/ServiceRequest?subject=Patient/{p['id']},Patient/{q['id']}", headers=auth(token)))
    assert set(_ids(orders)) == {str(order_p), str(order_q)}
    assert _ids(fhir_ok(client.get(f"/fhir/ServiceRequest?_id={order_q}", headers=auth(token)))) == [str(order_q)]
    assert fhir_ok(client.get(f"/fhir/Observation?code={local['code']}&_summary=count", headers=auth(token)))["total"] == 2
