"""Each SQL text of the LIS fast path (shared.lis.sql) does what the SQLAlchemy statement it replaced does:
the same rows and columns written (compared as PostgreSQL's text of the whole row, so a JSON ``null`` and
an SQL NULL differ), the same rows read. The SQLAlchemy statement runs on the ORM's unit of work, the text
on the driver pool's (shared.db.driver_uow), each in a transaction rolled back, with the same values."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from shared.auth import SYSTEM_LIS
from shared.db import unit_of_work, wire
from shared.db.driver_uow import driver_unit_of_work, run
from shared.lis import ingest, sql
from shared.lis.orders import _FILLER_NAMESPACES, _PLACER_NAMESPACES, _find_statement, _namespace_params
from shared.lis.pending import Pending, check
from shared.lis.errors import ConcurrentChange
from shared.log import current_request_id
from shared.models import LabOrder, LabResult, LisPatientSync, Patient, PatientIdentifier
from shared.services import provenance, versions
from shared.services.duplicates import PatientLike, find_duplicates

# In the past: the committed fixtures must not fall in another test's window of recent changes (an export _since).
NOW = datetime(2025, 12, 6, 20, 0, 1, 123456, tzinfo=UTC)


class _Rollback(Exception):
    pass


Query = Callable[..., list[Any]]


def _rolled_back(boundary: Callable[[], Any], work: Callable[[Any], Any], read: Callable[[Query], Any]) -> Any:
    """`work(uow)`, then `read` of what it left, in one transaction rolled back."""
    seen: list[Any] = []
    try:
        with boundary() as uow:
            work(uow)
            seen.append(read(lambda text, params=(): run(uow, text, params)))
            raise _Rollback
    except _Rollback:
        pass
    return seen[0]


def _both(orm_work: Callable[[Any], Any], text_work: Callable[[Any], Any], read: Callable[[Query], Any]) -> Any:
    """What the SQLAlchemy statement leaves (ORM's unit of work) and what the text leaves (driver
    pool's): asserted equal, and returned."""
    through_sqlalchemy = _rolled_back(unit_of_work, orm_work, read)
    as_text = _rolled_back(driver_unit_of_work, text_work, read)
    assert as_text == through_sqlalchemy
    return as_text


def _row_text(table: str, **key: Any) -> Callable[[Query], Any]:
    where = " AND ".join(f"{column} = %s" for column in key)
    return lambda q: [r[0] for r in q(f"SELECT t::text FROM {table} t WHERE {where}", tuple(str(v) for v in key.values()))]


@pytest.fixture(scope="module")
def patient(database_url: str) -> uuid.UUID:
    """A committed patient (no LIS stamps yet) with one identifier."""
    patient_id = uuid.uuid4()
    with unit_of_work() as uow:
        uow.session.execute(sa.insert(Patient.__table__).values(
            id=patient_id, mrn=f"T{uuid.uuid4().hex[:12]}", family="Fastsqlova", family_norm="fastsqlova",
            given=["Ada"], first_given_norm="ada", birth_date=date(1960, 2, 3), phone="+14155550123", source="lis",
            created_at=NOW, updated_at=NOW))
        uow.session.execute(sa.insert(PatientIdentifier.__table__).values(
            id=uuid.uuid4(), patient_id=patient_id, system="LAB", value=f"ID{patient_id.hex}", type="MR", created_at=NOW))
    return patient_id


@pytest.fixture(scope="module")
def order(patient: uuid.UUID) -> uuid.UUID:
    order_id = uuid.uuid4()
    with unit_of_work() as uow:
        uow.session.execute(sa.insert(LabOrder.__table__).values(
            id=order_id, patient_id=patient, placer_namespace="LAB", placer_number=f"P{order_id.hex}",
            filler_namespace="", filler_number=f"F{order_id.hex}", status="requested", source="lis",
            lis_field_stamps={"priority": ["2026-01-01T00:00:00.000000Z", "1", "F"]}, version=1,
            created_at=NOW, updated_at=NOW))
        uow.session.execute(sa.insert(LabResult.__table__).values(
            id=uuid.uuid4(), order_id=order_id, patient_id=patient, result_key="LN|2345-7|#1", status="P", value="5.0",
            values=["5.0"], previous_versions=[], version=1, lis_stamp=["a", "b", "c"], created_at=NOW, updated_at=NOW))
    return order_id


def _message_values(pubsub: bool, attributes: dict[str, Any] | None) -> dict[str, Any]:
    raw = b"MSH|^~\\&|LAB|FAC|||20261206||ORU^R01|C1|P|2.5\r"
    return {
        "id": uuid.uuid4(), "received_at": NOW, "transport": "pubsub-push" if pubsub else "cloudevent",
        "ce_source": "//pubsub", "ce_id": f"ce-{uuid.uuid4().hex}", "ce_type": "t",
        "pubsub_message_id": f"m-{uuid.uuid4().hex}" if pubsub else None, "publish_time": NOW, "ordering_key": None,
        "subscription": "s", "attributes": attributes, "part": 0, "parts": 1, "content_format": "hl7v2", "raw": raw,
        "raw_sha256": hashlib.sha256(raw).hexdigest(), "raw_size": len(raw), "status": "failed",
        "error_code": "incomplete", "warnings": [], "delivery_count": 1, "attempts": 1, "sending_application": "LAB",
        "sending_facility": "FAC", "control_id": "C1", "message_type": "ORU^R01", "message_time": NOW - timedelta(hours=1),
        "lock_facility": "FAC", "lock_control_id": "C1",
    }


@pytest.mark.parametrize(("pubsub", "lock", "attributes"), [(True, True, {"a": "1"}), (False, False, None),
                                                             (True, False, None)])
def test_a_message_row_is_inserted_redelivered_and_finished_as_through_sqlalchemy(database_url, pubsub, lock, attributes):
    values = _message_values(pubsub, attributes)
    params = [json.dumps(values[c]) if c == "attributes" else values[c] for c in sql.ROW_COLUMNS]
    params += ["lis-control-id:FAC\x1fC1"] if lock else []
    insert_text = sql.insert_row(pubsub, lock)
    key = [values["ce_source"], values["pubsub_message_id"] if pubsub else values["ce_id"], 0]
    row = _row_text("lis_messages", id=values["id"])
    inserted = _both(lambda uow: uow.session.execute(ingest._insert_row(pubsub, lock), values),
                     lambda uow: run(uow, insert_text, params), row)
    assert len(inserted) == 1

    def redelivered(text: bool) -> Callable[[Any], Any]:
        def work(uow: Any) -> None:
            first = run(uow, insert_text, params)
            again = run(uow, insert_text, params)  # the same delivery: no row
            assert len(first) == 1 and again == []
            seen = (run(uow, sql.redelivered(pubsub), key)[0] if text
                    else ingest._redelivered(uow, _Delivery(pubsub, values), 0))
            assert (seen.id, seen.status, seen.received_at, seen.publish_time) == (values["id"], "failed", NOW, NOW)
        return work

    _both(redelivered(False), redelivered(True), row)
    finish = {"id": values["id"], "status": "processed", "error_code": None, "warnings": ["w1", "w2"],
              "patient_id": None, "patient_ids": [uuid.UUID(int=1), uuid.UUID(int=2)], "duplicate_of": None,
              "processed_at": NOW + timedelta(seconds=3)}
    final_params = (finish["processed_at"], "processed", None, finish["warnings"], None, finish["patient_ids"], None,
                    finish["processed_at"], values["id"])
    _both(lambda uow: (run(uow, insert_text, params),
                       uow.session.execute(ingest._final_status("m_"), {f"m_{k}": v for k, v in finish.items()})),
          lambda uow: (run(uow, insert_text, params), run(uow, sql.FINAL_STATUS, final_params)), row)


class _Delivery:
    def __init__(self, pubsub: bool, values: dict[str, Any]) -> None:
        self.pubsub_message_id = values["pubsub_message_id"]
        self.ce_source, self.ce_id = values["ce_source"], values["ce_id"]


def test_an_order_is_found_inserted_and_updated_as_through_sqlalchemy(patient, order):
    with unit_of_work() as uow:
        stored = uow.session.execute(sa.select(LabOrder.__table__).where(LabOrder.id == order)).one()
    for placer, filler in ((True, True), (True, False), (False, True)):
        params: dict[str, Any] = {}
        args: list[Any] = []
        if placer:
            params.update(placer=stored.placer_number,
                          **_namespace_params("placer_namespace", {"LAB", "", "patient-mgt"}, _PLACER_NAMESPACES))
            args += [params[f"placer_namespace{i}"] for i in range(_PLACER_NAMESPACES)] + [stored.placer_number]
        if filler:
            params.update(filler=stored.filler_number, **_namespace_params("filler_namespace", {""}, _FILLER_NAMESPACES))
            args += [params[f"filler_namespace{i}"] for i in range(_FILLER_NAMESPACES)] + [stored.filler_number]
        with unit_of_work() as uow:
            through_sqlalchemy = [tuple(r) for r in uow.session.execute(_find_statement(placer, filler, True), params)]
        with driver_unit_of_work() as uow:
            as_text = run(uow, sql.find_orders(placer, filler, True, _PLACER_NAMESPACES, _FILLER_NAMESPACES), args)
        columns = list(LabOrder.__table__.c.keys())
        assert [{c: getattr(r, c) for c in columns} for r in as_text] == \
               [dict(zip(columns, r, strict=True)) for r in through_sqlalchemy] != []

    new_id = uuid.uuid4()
    new = {"id": new_id, "patient_id": patient, "placer_namespace": "LAB", "placer_number": f"P{new_id.hex}",
           "filler_namespace": "", "filler_number": None, "status": "final", "source": "lis", "lis_applied_at": NOW,
           "lis_field_stamps": {"code": ["x", "y", "z"]}, "version": 1, "created_at": NOW, "updated_at": NOW,
           "code_system": "LN", "code": "24323-8", "code_display": "CMP", "priority": None,
           "ordered_at": NOW - timedelta(days=1), "notes": "a note"}

    def pending_insert(uow: Any) -> None:
        pending = Pending()
        pending.insert_rows("lab_orders", [new], reason="order_created_concurrently")
        statement, values, checks = pending.attach(sql.FLUSHED, (), returning=False)
        check(run(uow, statement, values)[0][1:], checks)

    _both(lambda uow: uow.session.execute(pg_insert(LabOrder.__table__).values(new).on_conflict_do_nothing()),
          pending_insert, _row_text("lab_orders", id=new_id))
    change = {"status": "final", "priority": "S", "ordered_at": NOW, "lis_field_stamps": {"a": ["1", "2", "3"]},
              "lis_applied_at": NOW + timedelta(seconds=1), "updated_at": NOW + timedelta(seconds=2), "patient_id": patient}
    table = LabOrder.__table__
    _both(lambda uow: uow.session.execute(sa.update(table).where(table.c.id == order).values(
              **change, version=table.c.version + 1)),
          lambda uow: _flushed(uow, lambda p: p.update_row("lab_orders", order, dict(change), bump_version=True)),
          _row_text("lab_orders", id=order))


def _flushed(uow: Any, queue: Callable[[Pending], None]) -> None:
    pending = Pending()
    queue(pending)
    pending.flush(uow)


def test_results_are_read_inserted_and_updated_as_through_sqlalchemy(patient, order):
    keys = ["LN|2345-7|#1", "LN|none|#1"]
    with unit_of_work() as uow:
        through_sqlalchemy = uow.session.execute(sa.select(LabResult.__table__).where(
            LabResult.order_id == order, LabResult.result_key.in_(keys))).all()
        observations = uow.session.execute(sa.select(LabResult.__table__).where(
            LabResult.order_id.is_(None), LabResult.patient_id == patient, LabResult.result_key.in_(keys))).all()
    with driver_unit_of_work() as uow:
        as_text = run(uow, sql.ORDER_RESULTS, (order, keys))
        observed = run(uow, sql.PATIENT_OBSERVATIONS, (patient, keys))
    columns = list(LabResult.__table__.c.keys())
    assert [{c: getattr(r, c) for c in columns} for r in as_text] == [r._asdict() for r in through_sqlalchemy] != []
    assert observed == observations == []

    rows = [{"id": uuid.uuid4(), "order_id": order, "patient_id": patient, "result_key": f"LN|{n}|#1", "sub_id": None,
             "previous_versions": [], "version": 1, "created_at": NOW, "updated_at": NOW, "status": "F",
             "value": "7", "values": ["7"], "value_type": "NM", "units": "mmol/L", "reference_range": "1-9",
             "abnormal_flags": ["H"] if n else [], "observed_at": NOW, "observed_text": "20261206200001",
             "notes": ["n1"], "code_system": "LN", "code": str(n), "code_display": "Glucose", "lis_stamp": ["s", "c", "f"],
             "lis_message_id": uuid.uuid4(), "lis_applied_at": NOW} for n in range(2)]
    from shared.lis.results import _insert  # noqa: PLC0415

    def read(q: Query) -> Any:
        return sorted(r[0] for r in q("SELECT t::text FROM lab_results t WHERE id = ANY(%s::uuid[])",
                                      ([r["id"] for r in rows],)))

    _both(lambda uow: uow.session.execute(_insert(), rows),
          lambda uow: _flushed(uow, lambda p: p.insert_rows("lab_results", rows, reason="result_created_concurrently")),
          read)
    [existing] = through_sqlalchemy
    change = {"previous_versions": [{"stamp": ["a", "b", "c"], "value": "5.0"}], "version": 2, "updated_at": NOW,
              "patient_id": patient, "status": "C", "value": "6", "values": ["6", "6.1"], "observed_at": NOW,
              "lis_stamp": ["x", "y", "z"], "lis_message_id": uuid.UUID(int=7), "abnormal_flags": [], "notes": []}
    table = LabResult.__table__
    _both(lambda uow: uow.session.execute(sa.update(table).where(table.c.id == existing.id).values(**change)),
          lambda uow: _flushed(uow, lambda p: p.update_row("lab_results", existing.id, dict(change), bump_version=False)),
          _row_text("lab_results", id=existing.id))


def test_a_checked_insert_that_lost_a_row_raises_concurrent_change(patient, order):
    with driver_unit_of_work() as uow:
        [existing] = run(uow, sql.ORDER_RESULTS, (order, ["LN|2345-7|#1"]))
        again = {c: getattr(existing, c) for c in LabResult.__table__.c.keys()}  # its id is taken
        pending = Pending()
        pending.insert_rows("lab_results", [again, {**again, "id": uuid.uuid4(), "result_key": "LN|other|#1"}],
                            reason="result_created_concurrently")
        with pytest.raises(ConcurrentChange, match="result_created_concurrently"):
            pending.flush(uow)


def _results_by_id(ids: list[uuid.UUID]) -> list[Any]:
    with driver_unit_of_work() as uow:  # another connection: what was committed
        return run(uow, "SELECT id FROM lab_results WHERE id = ANY(%s::uuid[])", (ids,))


def test_a_guarded_check_that_failed_fails_the_statement_and_the_commit_riding_with_it(patient, order):
    """The fast path's last statement carries its COMMIT: a lost row must fail the statement itself,
    with an error naming the reason and the count only, and leave nothing committed."""
    with driver_unit_of_work() as uow:
        [existing] = run(uow, sql.ORDER_RESULTS, (order, ["LN|2345-7|#1"]))
    again = {c: getattr(existing, c) for c in LabResult.__table__.c.keys()}  # its id is taken
    other = {**again, "id": uuid.uuid4(), "result_key": f"LN|guard-{uuid.uuid4().hex}|#1"}
    pending = Pending()
    pending.insert_rows("lab_results", [again, other], reason="result_created_concurrently")
    statement, values, checks = pending.attach(sql.FLUSHED, (), returning=False, guarded=True)
    with pytest.raises(Exception) as error, driver_unit_of_work() as uow:  # noqa: PT011 — pg8000's, as wire classes it
        uow.pipeline([(statement, values)], commit=True)
    fields = wire.server_error_fields(error.value)
    assert fields["C"] == "22P02" and "result_created_concurrently:1" in fields["M"]
    assert str(existing.id) not in str(fields) and "guard-" not in str(fields) and "2345" not in str(fields)
    assert checks == [(0, 2, "result_created_concurrently")]
    assert _results_by_id([other["id"]]) == []


def test_a_guarded_check_that_held_commits_with_its_statement(patient, order):
    row = {c: None for c in LabResult.__table__.c.keys()}
    row.update(id=uuid.uuid4(), order_id=order, patient_id=patient, result_key=f"LN|guard-{uuid.uuid4().hex}|#1",
               previous_versions=[], version=1, created_at=NOW, updated_at=NOW, status="F", values=[],
               abnormal_flags=[], notes=[])
    pending = Pending()
    pending.insert_rows("lab_results", [row], reason="result_created_concurrently")
    statement, values, checks = pending.attach(sql.FLUSHED, (), returning=False, guarded=True)
    with driver_unit_of_work() as uow:
        [answer] = uow.pipeline([(statement, values)], commit=True)
        check(answer[0][1:], checks)
        assert not uow.con._in_transaction  # committed: the block's end sends no COMMIT
        assert [r.id for r in _results_by_id([row["id"]])] == [row["id"]]


def test_a_check_s_reason_is_a_code_before_it_is_written_into_a_guard():
    pending = Pending()
    pending.add("INSERT INTO audit_log DEFAULT VALUES RETURNING id", expect=1, reason="x'; DROP TABLE patients; --")
    with pytest.raises(ValueError, match="is a code"):
        pending.attach(sql.FLUSHED, (), returning=False, guarded=True)


def test_a_new_patient_s_rows_and_a_known_one_s_stamps_are_written_as_through_sqlalchemy(patient):
    from shared.lis.patients import patient_document  # noqa: PLC0415

    for address in (None, {"line": ["1 Main St"], "city": "Köln", "postal_code": "50667"}):
        new_id = uuid.uuid4()
        row = {"id": new_id, "mrn": f"N{new_id.hex[:12]}", "status": "active", "preferred_language": None,
               "timezone": "UTC", "comm_email": False, "comm_sms": False, "source": "lis", "lis_applied_at": NOW,
               "lis_applied_control_id": "C1", "version": 1, "created_at": NOW, "updated_at": NOW, "family": "Neu",
               "given": ["Ida", "Maria"], "prefix": [], "suffix": ["Jr"], "family_norm": "neu", "first_given_norm": "ida",
               "birth_date": date(1970, 1, 2), "sex": "female", "phone": None, "email": "ida@example.org",
               "address": address}
        _both(lambda uow, r=row: uow.session.execute(sa.insert(Patient.__table__).values(r)),
              lambda uow, r=row: run(uow, sql.INSERT_PATIENT, tuple(
                  json.dumps(r[c]) if c == "address" else r[c] for c in sql.PATIENT_COLUMNS)),
              _row_text("patients", id=new_id))
    stamps, sources = {"name": ["s", "c", "f"]}, {"name": {"source": "lis", "at": "s", "message_id": "m"}}
    sync = LisPatientSync.__table__
    new_patient = lambda uow: run(uow, sql.INSERT_PATIENT, tuple(  # noqa: E731
        json.dumps(row[c]) if c == "address" else row[c] for c in sql.PATIENT_COLUMNS))
    _both(lambda uow: (new_patient(uow), uow.session.execute(sa.insert(sync).values(
              patient_id=new_id, field_stamps=stamps, field_sources=sources, updated_at=NOW))),
          lambda uow: (new_patient(uow), run(uow, sql.INSERT_SYNC, (new_id, json.dumps(stamps), json.dumps(sources), NOW))),
          _row_text("lis_patient_sync", patient_id=new_id))
    document = patient_document(row, [("urn:patient-mgt:mrn", row["mrn"], "MR")])
    _both(lambda uow: (new_patient(uow), versions.record_new_patient(uow, SYSTEM_LIS, new_id, document, "lis-create",
                                                                     field_sources=sources)),
          lambda uow: (new_patient(uow), run(uow, sql.INSERT_FIRST_VERSION, (
              new_id, new_id, "lis-create", json.dumps(document), NOW, SYSTEM_LIS.name, current_request_id(),
              json.dumps(sources)))),
          lambda q: [r[0] for r in q("SELECT (resource_type, resource_id, patient_id, version, change, snapshot, "
                                     "changed_by, request_id, field_sources)::text FROM resource_versions "
                                     "WHERE resource_id = %s::uuid", (new_id,))])
    # a known patient's newest message and stamps, twice: inserted, then merged into
    for _ in range(2):
        more = {"birth_date": ["t", "c", "f"]}
        _both(lambda uow: (uow.session.execute(sa.update(Patient.__table__).where(Patient.id == patient).values(
                  lis_applied_at=NOW, lis_applied_control_id="C9")),
                  uow.session.execute(provenance.sync_upsert(patient, stamps, sources, NOW)),
                  uow.session.execute(provenance.sync_upsert(patient, more, {}, NOW + timedelta(seconds=1)))),
              lambda uow: _flushed(uow, lambda p: (
                  p.add(sql.LIS_APPLIED, (NOW, "C9", patient)),
                  p.add(sql.STAMPS, (patient, json.dumps(stamps), json.dumps(sources), NOW)))) or run(
                  uow, sql.STAMPS, (patient, json.dumps(more), "{}", NOW + timedelta(seconds=1))),
              lambda q: (_row_text("patients", id=patient)(q), _row_text("lis_patient_sync", patient_id=patient)(q)))


@pytest.mark.parametrize("probe", [
    {"family": "Fastsqlova", "given": ["Ada"], "phone": None, "email": None},
    {"family": "", "given": [], "phone": "+14155550123", "email": None},
    {"family": "Other", "given": ["X"], "phone": "+14155550123", "email": "x@example.org"},
    {"family": "Other", "given": ["X"], "phone": None, "email": "X@Example.org"},
])
def test_probable_duplicates_are_found_as_the_registry_finds_them(patient, probe):
    from shared.lis.patients import _probable_duplicates  # noqa: PLC0415

    birth_date = date(1960, 2, 3)
    exclude = uuid.uuid4()
    with unit_of_work() as uow:
        expected = [(d.patient_id, d.reason) for d in find_duplicates(uow, PatientLike(
            birth_date, probe["family"], tuple(probe["given"]), probe["phone"], probe["email"], exclude_id=exclude))]
    with driver_unit_of_work() as uow:
        found = [(r.id, r.reason) for r in _probable_duplicates(uow, {"birth_date": birth_date, **probe}, exclude)]
    assert found == expected
    assert (patient in [p for p, _ in found]) is bool(probe["family"] == "Fastsqlova" or probe["phone"])


def test_identifiers_are_claimed_as_the_registry_claims_them(patient):
    from shared.lis.patients import _queue_identifiers  # noqa: PLC0415
    from shared.services.patients import claim_identifiers  # noqa: PLC0415

    keys = [("SSA", f"SSN{uuid.uuid4().hex[:9]}", "SS"), ("LAB-2", f"V{uuid.uuid4().hex[:9]}", None)]

    def read(q: Query) -> Any:  # ids and times are each path's own
        return [tuple(r) for r in q("SELECT patient_id, system, value, type FROM patient_identifiers "
                                    "WHERE patient_id = %s::uuid ORDER BY created_at, ctid", (patient,))]

    written = _both(lambda uow: claim_identifiers(uow, patient, keys),
                    lambda uow: _flushed(uow, lambda p: _queue_identifiers(p, patient, keys, NOW)), read)
    assert [(s, v, t) for _, s, v, t in written[-2:]] == keys
    with driver_unit_of_work() as uow:  # another patient holds one of them already: the race is lost
        pending = Pending()
        _queue_identifiers(pending, uuid.uuid4(), [("LAB", f"ID{patient.hex}", "MR")], NOW)
        with pytest.raises(ConcurrentChange, match="identifier_claimed_concurrently"):
            pending.flush(uow)
