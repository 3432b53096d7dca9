import json
from datetime import date, timedelta

import pytest
from pydantic import ValidationError

from shared.schemas.patients import PatientCreate

VALID = {"name": {"family": "Doe", "given": ["Jane"]}, "birth_date": "1980-05-06"}


def parse(**overrides):
    return PatientCreate.model_validate_json(json.dumps({**VALID, **overrides}))


def error_fields(**overrides):
    with pytest.raises(ValidationError) as info:
        parse(**overrides)
    return {".".join(str(p) for p in e["loc"]) for e in info.value.errors()}


def test_minimal_patient_gets_safe_defaults():
    p = parse()
    assert p.sex == "unknown" and p.preferred_language == "en" and p.timezone == "UTC"
    assert p.communication.email is False and p.communication.sms is False


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"birth_date": "2023-02-30"}, "birth_date"),
        ({"birth_date": (date.today() + timedelta(days=1)).isoformat()}, "birth_date"),
        ({"name": {"family": "x" * 201}}, "name.family"),
        ({"name": {"family": "Do\x07e"}}, "name.family"),
        ({"phone": "555-1234"}, "phone"),
        ({"email": "not-an-email"}, "email"),
        ({"sex": "M"}, "sex"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"preferred_language": "english!"}, "preferred_language"),
        ({"unknown": 1}, "unknown"),
        ({"communication": {"email": "yes"}}, "communication.email"),
        ({"identifiers": [{"system": "urn:patient-mgt:mrn", "value": "1"}]}, "identifiers"),
        ({"address": {"city": "X", "state": "Y", "postal_code": "1", "country": "Spain"}}, "address.country"),
    ],
)
def test_bad_input_names_the_field(overrides, field):
    assert field in error_fields(**overrides)


def test_errors_do_not_echo_input():
    with pytest.raises(ValidationError) as info:
        parse(phone="+1 call me at 555")
    dumped = json.dumps(info.value.errors(include_input=False, include_context=False, include_url=False))
    assert "call me" not in dumped
