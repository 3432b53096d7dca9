"""A new LIS patient's version snapshot is built without the API's pydantic schemas
(``shared.lis.patients.patient_document``): it must be exactly what ``services.patients.to_resource``
and ``model_dump(mode="json")`` give for the same row — the same keys in the same order, the same
values, the same JSON text."""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime, timedelta, timezone
from types import SimpleNamespace

import pytest

from shared.lis.patients import patient_document
from shared.services.patients import to_resource

NOW = datetime(2026, 12, 6, 2, 55, 23, 4783, tzinfo=timezone.utc)


def _row(**changes):
    row = {"id": uuid.uuid4(), "mrn": "100000017", "status": "active", "preferred_language": None, "timezone": "UTC",
           "comm_email": False, "comm_sms": False, "source": "lis", "lis_applied_at": NOW, "lis_applied_control_id": "C1",
           "version": 1, "created_at": NOW, "updated_at": NOW,
           "family": "", "given": [], "prefix": [], "suffix": [], "family_norm": "", "first_given_norm": "",
           "birth_date": None, "sex": "unknown", "phone": None, "email": None, "address": None}
    return {**row, **changes}


CASES = {
    "bare": _row(),
    "full": _row(family="Ødegård", given=["Anne", "Marie"], prefix=["Dr"], suffix=["Jr"], family_norm="odegard",
                 first_given_norm="anne", birth_date=date(1961, 2, 28), sex="female", phone="+4722334455",
                 email="a@example.org", address={"line": ["Storgata 1", "3. etg"], "city": "Oslo", "state": None,
                                                 "postal_code": "0155", "country": "NO"}),
    "address_parts_missing": _row(address={"city": "Bergen"}, sex="male"),
    "whole_second": _row(created_at=NOW.replace(microsecond=0), updated_at=NOW.replace(microsecond=0), sex="other"),
    "other_offset": _row(created_at=NOW.astimezone(timezone(timedelta(hours=2))),
                         updated_at=NOW.astimezone(timezone(timedelta(hours=-5, minutes=-30)))),
}
IDENTIFIERS = [("urn:oid:patient-mgt:mrn", "100000017", "MR"), ("LAB", "X-9", None), ("urn:hosp", "7", "PI")]


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_document_is_the_resource_as_pydantic_dumps_it(case):
    row = CASES[case]
    snapshot = SimpleNamespace(**row, merged_into=None, identifiers=[
        SimpleNamespace(system=s, value=v, type=t) for s, v, t in IDENTIFIERS])
    expected = to_resource(snapshot).model_dump(mode="json")  # type: ignore[arg-type]
    document = patient_document(row, IDENTIFIERS)
    assert document == expected
    assert json.dumps(document) == json.dumps(expected)  # key order too
