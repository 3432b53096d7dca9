"""The published JSON Schema of the JSON LIS event is the model's, and both judge events alike."""

import copy
import json
from pathlib import Path

import jsonschema
import pytest
from pydantic import ValidationError

from shared.lis.json_event import EXAMPLE, LisEvent, schema_text

SCHEMA_FILE = Path(__file__).resolve().parents[3] / "docs" / "lis-event.schema.json"


def test_published_schema_is_generated_from_the_model():
    assert SCHEMA_FILE.read_text() == schema_text(), "run: patient-mgt lis schema"
    jsonschema.Draft202012Validator.check_schema(json.loads(SCHEMA_FILE.read_text()))


def _variant(path: str, value):
    event = copy.deepcopy(EXAMPLE)
    *parents, last = path.split(".")
    node = event
    for key in parents:
        node = node[int(key)] if key.isdigit() else node[key]
    if value is KeyError:
        del node[last]
    else:
        node[int(last) if last.isdigit() else last] = value
    return event


CASES = [
    (EXAMPLE, True),
    (_variant("event", "patient"), False),  # a patient event carries no orders
    (_variant("orders", []), False),
    (_variant("orders.0.results", []), False),
    (_variant("orders.0.placer_number", KeyError), True),
    (_variant("orders.0.filler_number", KeyError), True),
    (_variant("patient.identifiers", []), False),
    (_variant("orders.0.results.0.status", "Q"), False),
    (_variant("sent_at", "yesterday"), False),
    (_variant("version", "2"), False),
    (_variant("surprise", 1), False),
    (_variant("message_id", ""), False),
    (_variant("patient.sex", "M"), False),
]


@pytest.mark.parametrize(("event", "valid"), CASES)
def test_schema_and_model_agree(event, valid):
    schema = json.loads(SCHEMA_FILE.read_text())
    schema_ok = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker()).is_valid(event)
    try:
        LisEvent.model_validate_json(json.dumps(event))
        model_ok = True
    except ValidationError:
        model_ok = False
    assert (schema_ok, model_ok) == (valid, valid)


def test_a_patient_event():
    event = {k: v for k, v in EXAMPLE.items() if k != "orders"} | {"event": "patient"}
    assert LisEvent.model_validate_json(json.dumps(event)).patient is not None
    assert jsonschema.Draft202012Validator(json.loads(SCHEMA_FILE.read_text())).is_valid(event)
