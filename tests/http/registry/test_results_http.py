"""GET /patients/{id}/results and /results/{code}/trend through the api function, on results the LIS
consumer stored from real ORU messages (one arriving late, one correcting an earlier value)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import sqlalchemy as sa

from shared.db import unit_of_work
from shared.models import AuditEntry
from tests.conftest import auth
from tests.http.registry.support import assert_problem
from tests.support import lis_db
from tests.support.lis_ingest import Feed, hl7, one

GLUCOSE, POTASSIUM = "2345-7", "2823-3"


def _oru(f: Feed, when: str, placer: str, *obx: str) -> bytes:
    return hl7(f.msh("ORU^R01^ORU_R01", when), f.pid("MRN1"), f"ORC|RE|{f.id(placer)}|F{f.id(placer)}",
               f"OBR|1|{f.id(placer)}|F{f.id(placer)}|{GLUCOSE}^Glucose^LN", *obx)


def _obx(n: int, code: str, name: str, value: str, units: str, ref: str, flag: str, status: str, observed: str) -> str:
    return f"OBX|{n}|NM|{code}^{name}^LN||{value}|{units}|{ref}|{flag}|||{status}|||{observed}"


@pytest.fixture(scope="module")
def chart(database_url: str) -> dict[str, Any]:
    """Four messages for one patient; the last to arrive was observed first."""
    f = Feed()
    sent = [
        _oru(f, "20260301090000", "PL1", _obx(1, GLUCOSE, "Glucose", "95", "mg/dL", "70-99", "N", "F", "20260301080000"),
             _obx(2, POTASSIUM, "Potassium", "4.1", "mmol/L", "3.5-5.1", "N", "F", "20260301080000")),
        _oru(f, "20260302090000", "PL2", _obx(1, GLUCOSE, "Glucose", "180", "mg/dL", "70-99", "H", "F", "20260302080000")),
        # The lab corrects PL1's glucose: 95 was wrong, 98 is right (OBX-11 C).
        _oru(f, "20260303090000", "PL1", _obx(1, GLUCOSE, "Glucose", "98", "mg/dL", "70-99", "N", "C", "20260301080000")),
        # Arrives last, taken first (a sample from the day before, still preliminary).
        _oru(f, "20260304090000", "PL3", _obx(1, GLUCOSE, "Glucose", "60", "mg/dL", "70-99", "L", "P", "20260228080000")),
    ]
    for raw in sent:
        assert one(raw).status == "processed"
    pid = lis_db.patient_id_by_identifier(f.facility, f.id("MRN1"))
    assert pid is not None
    return {"pid": pid, "feed": f}


def _result_reads(pid: uuid.UUID) -> list[AuditEntry]:
    with unit_of_work() as uow:
        return list(uow.session.scalars(sa.select(AuditEntry).where(
            AuditEntry.action == "result.read", AuditEntry.patient_ids.contains([pid])).order_by(AuditEntry.id)))


def test_results_newest_observation_first_across_orders(client, make_token, chart) -> None:
    pid = chart["pid"]
    resp = client.get(f"/patients/{pid}/results", headers=auth(make_token("patients:read")))
    assert resp.status_code == 200, resp.get_json()
    items = resp.get_json()["items"]
    assert [(i["code"]["code"], i["value"], i["observed_at"][:10]) for i in items[:1]] == [(GLUCOSE, "180", "2026-03-02")]
    assert {(i["code"]["code"], i["value"]) for i in items[1:3]} == {(GLUCOSE, "98"), (POTASSIUM, "4.1")}
    assert (items[3]["value"], items[3]["status"], items[3]["abnormal_flags"]) == ("60", "P", ["L"])
    corrected = next(i for i in items if i["value"] == "98")
    assert (corrected["status"], corrected["versions"], corrected["units"], corrected["reference_range"]) == ("C", 2, "mg/dL", "70-99")
    assert all(i["order_id"] for i in items) and resp.get_json()["next_cursor"] is None
    [read] = _result_reads(pid)
    assert read.details == {"returned": 4} and read.outcome == "success"


def test_filters_combine_and_pages_do_not_overlap(client, admin_token, chart) -> None:
    pid, h = chart["pid"], auth(admin_token)

    def values(**params: str) -> list[str]:
        resp = client.get(f"/patients/{pid}/results", query_string=params, headers=h)
        assert resp.status_code == 200, resp.get_json()
        return [i["value"] for i in resp.get_json()["items"]]

    assert values(code=GLUCOSE) == ["180", "98", "60"]
    assert values(code=GLUCOSE, system="LN", status="F,C") == ["180", "98"]
    assert values(status="c") == ["98"]
    assert sorted(values(**{"from": "2026-03-01", "to": "2026-03-01"})) == ["4.1", "98"]
    assert values(**{"to": "2026-02-28"}) == ["60"]
    assert values(code="0000-0") == []
    first = client.get(f"/patients/{pid}/results", query_string={"limit": 3}, headers=h).get_json()
    assert len(first["items"]) == 3 and first["next_cursor"]
    second = client.get(f"/patients/{pid}/results", query_string={"limit": 3, "cursor": first["next_cursor"]}, headers=h).get_json()
    assert [i["value"] for i in second["items"]] == ["60"] and second["next_cursor"] is None
    assert not {i["id"] for i in first["items"]} & {i["id"] for i in second["items"]}


@pytest.mark.parametrize("params, field", [({"status": "Z"}, "status"), ({"from": "2026-03-02", "to": "2026-03-01"}, None),
                                           ({"limit": "0"}, "limit"), ({"colour": "red"}, "colour"),
                                           ({"cursor": "bm9wZQ"}, "cursor"), ({"from": "yesterday"}, "from")])
def test_bad_parameters_are_422_and_read_nothing(client, admin_token, chart, params, field) -> None:
    pid = chart["pid"]
    before = len(_result_reads(pid))
    doc = assert_problem(client.get(f"/patients/{pid}/results", query_string=params, headers=auth(admin_token)), 422)
    if field:
        assert field in {e["field"] for e in doc["errors"]}
    assert all(str(v) not in doc["detail"] for v in params.values())
    assert [r.outcome for r in _result_reads(pid)[before:]] == ["validation-failed"], "the refusal is audited, no read"


def test_trend_in_observation_order_with_units_ranges_flags_and_earlier_versions(client, make_token, chart) -> None:
    pid = chart["pid"]
    resp = client.get(f"/patients/{pid}/results/{GLUCOSE}/trend", headers=auth(make_token("patients:read")))
    assert resp.status_code == 200, resp.get_json()
    trend = resp.get_json()
    assert trend["patient_id"] == str(pid) and trend["code"] == {"system": "LN", "code": GLUCOSE, "display": "Glucose"}
    points = trend["points"]
    assert [(p["observed_at"][:10], p["value"], p["numeric_value"], p["status"], p["abnormal_flags"]) for p in points] == [
        ("2026-02-28", "60", 60.0, "P", ["L"]),
        ("2026-03-01", "98", 98.0, "C", ["N"]),
        ("2026-03-02", "180", 180.0, "F", ["H"]),
    ]
    assert {(p["units"], p["reference_range"]) for p in points} == {("mg/dL", "70-99")}
    assert [p["previous_versions"] for p in points[::2]] == [[], []]
    [earlier] = points[1]["previous_versions"]
    assert (earlier["value"], earlier["status"], earlier["reported_at"][:10]) == ("95", "F", "2026-03-01")
    assert all(p["order_id"] for p in points) and trend["next_cursor"] is None
    page = client.get(f"/patients/{pid}/results/{GLUCOSE}/trend", query_string={"limit": 2, "from": "2026-02-28"},
                      headers=auth(make_token("patients:read"))).get_json()
    rest = client.get(f"/patients/{pid}/results/{GLUCOSE}/trend", query_string={"limit": 2, "cursor": page["next_cursor"]},
                      headers=auth(make_token("patients:read"))).get_json()
    assert [p["value"] for p in page["points"]] + [p["value"] for p in rest["points"]] == ["60", "98", "180"]
    read = _result_reads(pid)[-3]
    assert read.details == {"view": "trend", "code": GLUCOSE, "returned": 3}


def test_an_analyte_the_patient_never_had_is_an_empty_trend(client, admin_token, chart) -> None:
    resp = client.get(f"/patients/{chart['pid']}/results/1234-5/trend", headers=auth(admin_token))
    assert resp.status_code == 200 and resp.get_json()["points"] == []


def test_scopes_and_unknown_patients(client, make_token, chart) -> None:
    pid = chart["pid"]
    for path in (f"/patients/{pid}/results", f"/patients/{pid}/results/{GLUCOSE}/trend"):
        assert_problem(client.get(path), 401)
        assert_problem(client.get(path, headers=auth(make_token("lis:read"))), 403)
    unknown = uuid.uuid4()
    for path in (f"/patients/{unknown}/results", f"/patients/{unknown}/results/{GLUCOSE}/trend"):
        assert_problem(client.get(path, headers=auth(make_token("patients:read"))), 404)


def test_both_routes_are_in_the_openapi_document(client) -> None:
    paths = client.get("/openapi.json").get_json()["paths"]
    listed = paths["/patients/{patient_id}/results"]["get"]
    assert listed["x-required-scope"] == "patients:read" and listed["x-audit-action"] == "result.read"
    assert {p["name"] for p in listed["parameters"]} >= {"code", "system", "status", "from", "to", "limit", "cursor"}
    trend = paths["/patients/{patient_id}/results/{code}/trend"]["get"]
    assert trend["x-required-scope"] == "patients:read"
    assert {p["name"] for p in trend["parameters"]} >= {"patient_id", "code", "from", "to", "limit", "cursor"}
