"""Search-parameter parsing, OperationOutcome rendering and FHIR JSON encoding (pure)."""

import json
import uuid
from datetime import date
from decimal import Decimal

import pytest

from shared.errors import BadRequest, Conflict, DuplicateIdentifier, InvalidJson, MethodNotAllowed, ServiceUnavailable, Unauthorized, ValidationFailed
from shared.fhir.encoding import compact, dumps
from shared.fhir.outcome import render_error
from shared.fhir.params import birthdate_bounds, split_escaped
from shared.fhir.search import Token, and_or, reference_id, token
from tests.support.fhir import validate


@pytest.mark.parametrize(("values", "low", "high"), [
    (["1970-05-06"], date(1970, 5, 6), date(1970, 5, 7)),
    (["eq1970-12"], date(1970, 12, 1), date(1971, 1, 1)),
    (["1970"], date(1970, 1, 1), date(1971, 1, 1)),
    (["ge1970", "lt1980-06"], date(1970, 1, 1), date(1980, 6, 1)),
    (["gt1970-02"], date(1970, 3, 1), None),
    (["le2000-02-29"], None, date(2000, 3, 1)),
])
def test_birthdate_bounds(values, low, high):
    assert birthdate_bounds(values) == (low, high)


@pytest.mark.parametrize("value", ["ne1970", "1970-02-30", "70-01-01", "1970-1-1", "ap1970", ""])
def test_birthdate_refusals(value):
    with pytest.raises(BadRequest):
        birthdate_bounds([value])


def test_tokens_and_escapes():
    assert token("urn:x|A1", "identifier") == Token("urn:x", "A1")
    assert token("A1", "identifier") == Token(None, "A1")
    assert token(r"urn:x|a\|b", "identifier") == Token("urn:x", "a|b")
    # system| is any code in the system, |code a code without one (the spec's token forms)
    assert token("urn:x|", "code") == Token("urn:x", None)
    assert token("|A1", "code") == Token("", "A1")
    assert split_escaped(r"a\,b,c", ",") == ["a,b", "c"]
    assert split_escaped(r"s|a\,b,c", ",", unescape=False) == [r"s|a\,b", "c"]
    for bad in ("|", "a|b|c", " "):
        with pytest.raises(BadRequest):
            token(bad, "identifier")


def test_repeated_is_and_comma_is_or():
    assert and_or(["a,b", "c"], "name") == [["a", "b"], ["c"]]
    assert and_or(r"a\,b", "name") == [["a,b"]]
    for bad in ("a,,b", ["a", ","], ",".join("x" * 21)):
        with pytest.raises(BadRequest):
            and_or(bad, "name")


def test_patient_references():
    pid = uuid.uuid4()
    for ref in (str(pid), f"Patient/{pid}", f"https://x.example/fhir/Patient/{pid}"):
        assert reference_id(ref, "patient", "Patient") == pid
    for not_ours in ("Patient/123", "abc"):  # an id this server never issued matches nothing
        assert reference_id(not_ours, "patient", "Patient") is None
    with pytest.raises(BadRequest):
        reference_id(f"Practitioner/{pid}", "patient", "Patient")


def _outcome(error):
    resp = render_error(error, "rid-1")
    assert resp.mimetype == "application/fhir+json"
    doc = json.loads(resp.get_data(as_text=True))
    validate(doc)
    return resp, doc


@pytest.mark.parametrize(("error", "status", "code"), [
    (BadRequest("x"), 400, "invalid"), (InvalidJson(), 400, "structure"), (Unauthorized(), 401, "login"),
    (Conflict("merged"), 409, "conflict"), (DuplicateIdentifier("taken", existing_patient_id="abc"), 409, "duplicate"),
    (MethodNotAllowed(["GET"]), 405, "not-supported"), (ServiceUnavailable(), 503, "transient"),
])
def test_domain_errors_become_operation_outcomes(error, status, code):
    resp, doc = _outcome(error)
    assert resp.status_code == status and doc["issue"][0]["code"] == code
    assert doc["issue"][0]["details"]["coding"][0]["code"] == error.slug


def test_outcome_headers_and_field_issues():
    resp, _ = _outcome(Unauthorized())
    assert resp.headers["WWW-Authenticate"] == 'Bearer realm="patient-mgt"'
    assert _outcome(ServiceUnavailable(retry_after=7))[0].headers["Retry-After"] == "7"
    assert _outcome(MethodNotAllowed(["POST", "GET"]))[0].headers["Allow"] == "GET, POST"
    _, doc = _outcome(ValidationFailed([{"in": "body", "field": "Patient.birthDate", "message": "bad", "code": "date"},
                                        {"in": "query", "field": "_count", "message": "too small", "code": "ge"}]))
    assert doc["issue"][1] == {"severity": "error", "code": "invalid", "diagnostics": "bad", "expression": ["Patient.birthDate"]}
    assert doc["issue"][2]["diagnostics"] == "query parameter _count: too small" and "expression" not in doc["issue"][2]
    _, doc = _outcome(DuplicateIdentifier("taken", existing_patient_id="p-1", identifier_system="urn:x"))
    assert doc["issue"][0]["diagnostics"] == "taken (existing_patient_id: p-1; identifier_system: urn:x)"


def test_an_unexpected_failure_is_a_generic_500_outcome():
    resp = render_error(None, "rid-42")
    doc = json.loads(resp.get_data(as_text=True))
    validate(doc)
    assert resp.status_code == 500 and doc["issue"][0]["code"] == "exception" and "rid-42" in doc["issue"][0]["diagnostics"]


def test_compact_and_decimal_json():
    assert compact({"a": None, "b": [], "c": {}, "d": "", "e": [{"f": None}], "g": 0, "h": False}) == {"g": 0, "h": False}
    text = dumps({"v": Decimal("5.10"), "big": Decimal("1E+3"), "s": "é\"", "l": [1, True, None]})
    assert text == '{"v":5.10,"big":1E+3,"s":"\\u00e9\\"","l":[1,true,null]}'
    assert json.loads(text, parse_float=Decimal)["v"] == Decimal("5.10")
    with pytest.raises(ValueError):
        dumps({"v": Decimal("NaN")})
