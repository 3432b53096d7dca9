"""LabOrder → ServiceRequest and LabResult → Observation (pure: transient model objects, no database)."""

import json
import uuid
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from shared.fhir.encoding import dumps
from shared.fhir.lab import to_observation, to_service_request
from shared.models import LabOrder, LabResult
from tests.support.fhir import validate

NOW = datetime(2026, 11, 25, 9, 30, tzinfo=timezone.utc)
UCUM = "http://unitsofmeasure.org"


def result(**fields) -> LabResult:
    base = dict(id=uuid.uuid4(), order_id=uuid.uuid4(), patient_id=uuid.uuid4(), result_key="k", code_system="LN",
                code="2345-7", code_display="Glucose", value_type="NM", value="5.4", units="mmol/L", reference_range=None,
                abnormal_flags=[], status="F", observed_at=NOW, notes=[], version=2, created_at=NOW, updated_at=NOW)
    base.update(fields)
    return LabResult(**base)


def observation(**fields) -> dict:
    """Mapped, serialised as the view sends it, read back exactly, and validated."""
    doc = json.loads(dumps(to_observation(result(**fields))), parse_float=Decimal)
    validate(doc)
    return doc


def test_numeric_value_with_a_known_unit_is_a_ucum_quantity():
    obs = observation(value="5.40", units="mg/dL")
    assert obs["valueQuantity"] == {"value": Decimal("5.40"), "unit": "mg/dL", "system": UCUM, "code": "mg/dL"}
    assert str(obs["valueQuantity"]["value"]) == "5.40"
    assert obs["meta"]["versionId"] == "2" and obs["effectiveDateTime"] == "2026-11-25T09:30:00+00:00"
    assert obs["code"] == {"coding": [{"system": "http://loinc.org", "code": "2345-7", "display": "Glucose"}], "text": "Glucose"}


@pytest.mark.parametrize(("sent", "ucum"), [("x10E3/uL", "10*3/uL"), ("K/uL", "10*3/uL"), ("mEq/L", "meq/L"),
                                            ("IU/L", "[IU]/L"), ("MG/DL", "mg/dL"), ("µmol/L", "umol/L"),
                                            ("mL/min/1.73m2", "mL/min/{1.73_m2}"), ("sec", "s")])
def test_common_lab_spellings_map_to_ucum(sent, ucum):
    q = observation(units=sent)["valueQuantity"]
    assert (q["unit"], q["system"], q["code"]) == (sent, UCUM, ucum)


def test_an_unknown_unit_keeps_its_text_without_a_ucum_code_and_no_unit_is_never_invented():
    q = observation(units="bananas/day")["valueQuantity"]
    assert q == {"value": Decimal("5.4"), "unit": "bananas/day"}
    assert observation(units=None)["valueQuantity"] == {"value": Decimal("5.4")}


@pytest.mark.parametrize(("value", "expected"), [("+.5", "0.5"), ("007", "7"), ("-0", "0"), ("5.", "5"), ("-1.250", "-1.250")])
def test_hl7_numbers_become_json_numbers(value, expected):
    assert str(observation(value=value, units=None)["valueQuantity"]["value"]) == expected


def test_structured_numeric_values():
    assert observation(value_type="SN", value=">90", units="mL/min")["valueQuantity"] == {
        "value": Decimal("90"), "comparator": ">", "unit": "mL/min"}
    assert observation(value_type="SN", value="1:128", units=None)["valueRatio"] == {
        "numerator": {"value": Decimal("1")}, "denominator": {"value": Decimal("128")}}
    assert observation(value_type="SN", value="2-5", units="%")["valueRange"] == {
        "low": {"value": Decimal("2"), "unit": "%", "system": UCUM, "code": "%"},
        "high": {"value": Decimal("5"), "unit": "%", "system": UCUM, "code": "%"}}


def test_sn_keeps_its_meaning():
    # SN =^4.2 is written out "=4.2" by the HL7 layer: a plain quantity with its unit, not a string
    assert observation(value_type="SN", value="=4.2", units="mEq/L")["valueQuantity"] == {
        "value": Decimal("4.2"), "unit": "mEq/L", "system": UCUM, "code": "meq/L"}
    assert observation(value_type="SN", value="<=0.5", units="mg/dL")["valueQuantity"]["comparator"] == "<="
    assert observation(value_type="SN", value=">1:128", units=None)["valueRatio"] == {
        "numerator": {"value": Decimal("1"), "comparator": ">"}, "denominator": {"value": Decimal("128")}}
    assert observation(value_type="SN", value="1/64", units=None)["valueRatio"]["denominator"] == {"value": Decimal("64")}
    for text in ("<>5", "2+", ">2-5"):  # not equal, a categorical grade, a range with a comparator
        assert observation(value_type="SN", value=text, units=None)["valueString"] == text


def test_text_and_unparseable_values_stay_strings():
    assert observation(value_type="ST", value="12345", units=None)["valueString"] == "12345"
    assert observation(value_type="NM", value="5,4", units="mmol/L")["valueString"] == "5,4"
    assert observation(value_type="CWE", value="Positive")["valueString"] == "Positive"
    assert observation(value_type="TX", value="line one\nline two")["valueString"] == "line one\nline two"


def test_no_value_gives_a_data_absent_reason():
    obs = observation(value=None, value_type=None, status="X")
    assert not any(k.startswith("value") for k in obs)
    assert obs["dataAbsentReason"]["coding"][0]["code"] == "unknown" and obs["status"] == "cancelled"


@pytest.mark.parametrize(("obx11", "status"), [("F", "final"), ("P", "preliminary"), ("C", "corrected"), ("X", "cancelled"),
                                               ("W", "entered-in-error"), ("D", "entered-in-error"), ("A", "amended"),
                                               ("I", "registered"), ("R", "preliminary"), ("f", "final"), (None, "unknown"),
                                               ("Q", "unknown")])
def test_result_status(obx11, status):
    assert observation(status=obx11)["status"] == status


def test_interpretation_from_abnormal_flags():
    obs = observation(abnormal_flags=["HH", "a", "<", "QQ"])
    v3 = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
    assert obs["interpretation"] == [
        {"coding": [{"system": v3, "code": "HH", "display": "Critical high"}]},
        {"coding": [{"system": v3, "code": "A", "display": "Abnormal"}]},
        {"coding": [{"system": v3, "code": "<", "display": "Off scale low"}]},
        {"text": "QQ"},  # not in table 0078 / v3: kept as text, no guessed code
    ]


@pytest.mark.parametrize(("text", "low", "high"), [("3.5-5.1", "3.5", "5.1"), ("3.5 - 5.1", "3.5", "5.1"),
                                                    (">=60", "60", None), ("<=5", None, "5"), (">60", None, None),
                                                    ("negative", None, None), ("-2--1", "-2", "-1")])
def test_reference_ranges(text, low, high):
    [rng] = observation(reference_range=text)["referenceRange"]
    assert rng["text"] == text
    assert (str(rng["low"]["value"]) if "low" in rng else None) == low
    assert (str(rng["high"]["value"]) if "high" in rng else None) == high
    if low:
        assert rng["low"]["code"] == "mmol/L"


def test_codes_without_code_or_system():
    local = observation(code_system="99LAB", code="GLU")["code"]
    assert local["coding"][0]["system"] == "urn:patient-mgt:code-system:99LAB"
    assert observation(code_system=None, code=None, code_display=None)["code"] == {
        "extension": [{"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason", "valueCode": "unknown"}]}
    assert observation(code_system=None, code=None, code_display="Free text test")["code"] == {"text": "Free text test"}


def order(**fields) -> LabOrder:
    base = dict(id=uuid.uuid4(), patient_id=uuid.uuid4(), placer_namespace="HIS", placer_number="P1",
                filler_namespace="", filler_number=None, code_system="http://loinc.org", code="24323-8",
                code_display="Metabolic panel", status="requested", priority="routine", notes="fasting",
                ordered_at=NOW, version=1, updated_at=NOW)
    base.update(fields)
    return LabOrder(**base)


@pytest.mark.parametrize(("status", "fhir"), [("requested", "active"), ("in_progress", "active"), ("on_hold", "on-hold"),
                                              ("cancelled", "revoked"), ("final", "completed"), ("corrected", "completed"),
                                              ("something", "unknown")])
def test_service_request_status(status, fhir):
    sr = to_service_request(order(status=status))
    validate(sr)
    assert sr["status"] == fhir and sr["intent"] == "order"


def test_service_request_fields():
    o = order(priority="R", filler_number="F9", filler_namespace="LAB A")
    sr = to_service_request(o)
    validate(sr)
    assert "priority" not in sr  # a priority code outside FHIR's set is not guessed
    assert sr["identifier"] == [
        {"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "PLAC",
                              "display": "Placer Identifier"}]}, "system": "urn:patient-mgt:identifier-system:HIS", "value": "P1"},
        {"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "FILL",
                              "display": "Filler Identifier"}]}, "system": "urn:patient-mgt:identifier-system:LAB%20A", "value": "F9"},
    ]
    assert sr["subject"] == {"reference": f"Patient/{o.patient_id}"} and sr["note"] == [{"text": "fasting"}]
    assert sr["authoredOn"] == "2026-11-25T09:30:00+00:00"


def test_a_result_without_an_order_has_no_based_on():
    assert "basedOn" not in observation(order_id=None)
    assert observation()["basedOn"][0]["reference"].startswith("ServiceRequest/")


@pytest.mark.parametrize("system", [None, "", "Glucose serum level", "see lab manual"])
def test_every_coding_has_a_system_and_text_is_never_made_a_system(system):
    coding = observation(code_system=system, code="GLU")["code"]["coding"][0]
    assert coding["system"] == "urn:patient-mgt:local-code"


@pytest.mark.parametrize(("system", "uri"), [("LN", "http://loinc.org"), ("L", "urn:patient-mgt:code-system:L"),
                                             ("99zzz", "urn:patient-mgt:code-system:99zzz"),
                                             ("urn:oid:1.2.3", "urn:oid:1.2.3")])
def test_named_systems_keep_their_uris(system, uri):
    assert observation(code_system=system, code="GLU")["code"]["coding"][0]["system"] == uri
