"""Input models of the registry routes: each bad value is refused with the field named."""

import json
from datetime import date, timedelta

import pytest
from pydantic import ValidationError

from shared.schemas.history import HistoryEntryCreate, HistoryEntryPatch
from shared.schemas.orders import OrderCreate
from shared.schemas.patients import PATIENT_READ_ONLY, PatientPatch, read_only_errors
from shared.schemas.search import PatientSearchQuery


def fields(model, data, *, json_mode=True):
    with pytest.raises(ValidationError) as info:
        model.model_validate_json(json.dumps(data)) if json_mode else model.model_validate(data)
    return {".".join(str(p) for p in e["loc"]) for e in info.value.errors()}


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"limit": "100000"}, "limit"),
        ({"limit": "0"}, "limit"),
        ({"birth_date": "2023-02-30"}, "birth_date"),
        ({"mrn": "100000008"}, "mrn"),  # wrong check digit (…9 is valid)
        ({"mrn": "12ab"}, "mrn"),
        ({"identifier": "|x"}, "identifier"),
        ({"identifier": "a|b|c"}, "identifier"),
        ({"status": "deleted"}, "status"),
        ({"name": "---"}, "name"),
        ({"name": "ab\x00"}, "name"),
        ({"name": "a b c d e f g"}, "name"),
        ({"phone": "555-1234"}, "phone"),
        ({"email": "nope"}, "email"),
        ({"unknown": "1"}, "unknown"),
    ],
)
def test_search_query_refuses(query, field):
    assert field in fields(PatientSearchQuery, query, json_mode=False)


def test_search_query_parses_statuses_tokens_and_defaults():
    q = PatientSearchQuery.model_validate({"status": "merged,active", "identifier": "urn:x|V-1", "email": "A@Example.org"})
    assert q.statuses() == ("active", "merged") and q.limit == 20
    assert q.identifier_parts() == ("urn:x", "V-1") and q.email == "a@example.org"
    assert PatientSearchQuery.model_validate({"identifier": "V-1"}).identifier_parts() == (None, "V-1")
    assert PatientSearchQuery.model_validate({}).statuses() == ("active", "inactive")
    assert PatientSearchQuery.model_validate({"mrn": "100000009", "name": "x"}).used() == ["mrn", "name"]


def test_patch_keeps_explicit_nulls_and_refuses_merged_status():
    patch = PatientPatch.model_validate_json('{"phone": null, "name": {"given": ["Ana"]}}')
    assert patch.model_dump(mode="json", exclude_unset=True) == {"phone": None, "name": {"given": ["Ana"]}}
    assert fields(PatientPatch, {"status": "merged"}) == {"status"}
    assert fields(PatientPatch, {"name": {"family": "x" * 201}}) == {"name.family"}
    assert fields(PatientPatch, {"nickname": "x"}) == {"nickname"}


def test_read_only_fields_get_their_own_error():
    errors = read_only_errors({"id": "x", "mrn": "1", "version": 3, "phone": None}, PATIENT_READ_ONLY)
    assert {(e["field"], e["code"]) for e in errors} == {("id", "read_only"), ("mrn", "read_only"), ("version", "read_only")}
    assert read_only_errors(["not", "an", "object"], PATIENT_READ_ONLY) == []


def test_history_entry_rules():
    ok = HistoryEntryCreate.model_validate_json('{"category": "allergy", "notes": "penicillin"}')
    assert ok.status == "active"
    assert fields(HistoryEntryCreate, {"category": "allergy"}) == {""}  # neither code nor notes
    assert fields(HistoryEntryCreate, {"category": "hobby", "notes": "x"}) == {"category"}
    assert fields(HistoryEntryCreate, {"category": "condition", "notes": "x", "status": "deleted"}) == {"status"}
    future = (date.today() + timedelta(days=2)).isoformat()
    assert fields(HistoryEntryCreate, {"category": "condition", "notes": "x", "onset": future}) == {"onset"}
    assert fields(HistoryEntryCreate, {"category": "condition", "notes": "x", "onset": "2020-01-02",
                                       "abatement": "2020-01-01"}) == {""}
    assert fields(HistoryEntryPatch, {"recorded_by": "me"}) == {"recorded_by"}


def test_order_body():
    order = OrderCreate.model_validate_json('{"code": {"system": "http://loinc.org", "code": "2345-7"}}')
    assert order.priority == "routine"
    assert fields(OrderCreate, {"code": {"system": "http://loinc.org"}}) == {"code.code"}
    assert fields(OrderCreate, {"code": {"system": "s", "code": "c"}, "priority": "whenever"}) == {"priority"}
