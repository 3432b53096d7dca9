"""The hot paths of ``services.patient_sql`` write the rows and answer the documents the ORM path
(``services.patients``) does: same JSON byte for byte, same version snapshot, audit and outbox rows."""

from __future__ import annotations

import json
import uuid
from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from shared.auth import Principal
from shared.db import unit_of_work
from shared.events import catalog
from shared.errors import DuplicateIdentifier, NotFound, ProbableDuplicate
from shared.models import AuditEntry, OutboxEvent, Patient, PatientIdentifier, PatientNameToken, ResourceVersion
from shared.schemas.patients import PatientCreate
from shared.services import patient_sql, patients
from tests.support.concurrency import at_once

CLERK = Principal(key_id=None, name="test:clerk", scopes=frozenset({"patients:write"}))


def body(**overrides: object) -> PatientCreate:
    doc: dict[str, object] = {
        "name": {"family": "Sql" + uuid.uuid4().hex[:10], "given": ["Zoë María", "Ann"], "prefix": ["Dr"]},
        "birth_date": "1961-02-03",
        "sex": "female",
        "phone": "+1415" + str(uuid.uuid4().int)[:7],
        "email": f"Sql.{uuid.uuid4().hex[:8]}@Example.org",
        "address": {"line": ["1 Calle \"Mayor\" \\ 2"], "city": "Sevilla", "state": "AN", "postal_code": "41001",
                    "country": "ES"},
        "identifiers": [{"system": "urn:test:b", "value": uuid.uuid4().hex, "type": "PI"},
                        {"system": "urn:test:a", "value": uuid.uuid4().hex}],
        "communication": {"sms": True},
    }
    doc.update(overrides)
    return PatientCreate.model_validate_json(json.dumps(doc))


def orm_document(patient_id: uuid.UUID) -> str:
    with unit_of_work() as uow:
        return patients.to_resource(patients.load_patient(uow, patient_id)).model_dump_json()


def rows(model: type, *where: sa.ColumnElement[bool]) -> list:
    with unit_of_work() as uow:
        return list(uow.session.scalars(sa.select(model).where(*where)))


# PostgreSQL's json_build_object writes '" : ' and ', ', which a string may hold too: the documents
# are written compact by PostgreSQL itself and answered as its text, never re-encoded.
TRICKY = {"name": {"family": 'O" : x, \\', "given": ['", "', "é ü 漢 \u2028", "a\\"], "prefix": ["{}"]},
          "address": {"line": ['a, "b" : c', "[1, 2]"], "city": "Sevilla", "state": "AN", "postal_code": "41 001",
                      "country": "ES"}}


@pytest.mark.parametrize("overrides", [{}, {"address": None, "phone": None, "email": None, "identifiers": []},
                                       {"name": {"family": "Ó'Brien-Núñez", "given": []}}, TRICKY])
def test_registration_and_read_answer_the_orm_document_byte_for_byte(database_url, overrides):
    # duplicates allowed: the next test registers the same TRICKY names on the same birth date in the
    # worker's database, and may run first (a full run of 2026-12-07 met ProbableDuplicate here)
    created = patient_sql.register_patient(CLERK, body(**overrides), reject_duplicates=False)
    pid = uuid.UUID(created["id"])
    expected = orm_document(pid)
    assert patient_sql.dumps(created) == expected
    assert patient_sql.read_patient(CLERK, pid) == (expected, 1)
    # the identifiers: the MRN first, then the request's in its order
    assert [i["system"] for i in created["identifiers"]][0] == "urn:patient-mgt:mrn"


@pytest.mark.parametrize("overrides", [{}, {"address": None, "phone": None, "email": None, "identifiers": []}, TRICKY])
def test_a_registration_answers_postgresqls_text_which_is_the_orm_document_byte_for_byte(database_url, overrides):
    # duplicates allowed: the other document test registers the same names on the same birth date
    created = patient_sql.register(CLERK, body(**overrides), reject_duplicates=False)
    assert isinstance(created.json, str) and created.version == 1
    assert json.loads(created.json)["id"] == str(created.id)
    assert created.json == orm_document(created.id)  # the 201's body, never decoded and encoded again


def test_registration_writes_every_row_of_the_orm_path(database_url):
    data = body()
    doc = patient_sql.register_patient(CLERK, data, reject_duplicates=True)
    pid = uuid.UUID(doc["id"])
    (version,) = rows(ResourceVersion, ResourceVersion.resource_id == pid)
    assert (version.version, version.change, version.changed_by, version.field_sources) == (1, "create", CLERK.name, {})
    assert version.snapshot == doc
    (audit,) = rows(AuditEntry, AuditEntry.patient_ids.contains([pid]))
    assert (audit.action, audit.outcome, audit.principal, audit.details) == ("patient.create", "success", CLERK.name, None)
    (event,) = rows(OutboxEvent, OutboxEvent.subject == str(pid))
    assert (event.type, event.data) == (catalog.PATIENT_REGISTERED, {"patient_id": str(pid), "version": 1, "origin": "api"})
    (patient,) = rows(Patient, Patient.id == pid)
    assert patient.email == str(data.email).lower() and patient.family_norm and patient.first_given_norm == "zoemaria"
    tokens = {(t.kind, t.token) for t in rows(PatientNameToken, PatientNameToken.patient_id == pid)}
    assert {("given", "zoe"), ("given", "maria"), ("given", "ann")} <= tokens


def test_an_identifier_of_another_patient_is_a_409_naming_it_and_nothing_is_written(database_url):
    first = patient_sql.register_patient(CLERK, body(), reject_duplicates=True)
    taken = first["identifiers"][2]
    data = body(identifiers=[{"system": "urn:test:c", "value": uuid.uuid4().hex}, taken])
    with pytest.raises(DuplicateIdentifier) as error:
        patient_sql.register_patient(CLERK, data, reject_duplicates=False)
    assert error.value.extensions["existing_patient_id"] == first["id"]
    assert rows(Patient, Patient.family == data.name.family) == []
    assert rows(PatientIdentifier, PatientIdentifier.value == data.identifiers[0].value) == []


def _mrn_sequence_and_rows() -> tuple[int, int, int, int]:
    """The MRN sequence's last value and the counts of the rows a registration writes besides the patient."""
    with unit_of_work() as uow:
        return tuple(uow.session.execute(sa.text(
            "SELECT (SELECT last_value FROM patient_mrn_seq), (SELECT count(*) FROM audit_log), "
            "(SELECT count(*) FROM outbox), (SELECT count(*) FROM resource_versions)")).one())


def test_a_refused_registration_writes_nothing_and_takes_no_mrn_number(database_url):
    """The refusal is decided inside the one statement: nothing of the request is written, and no
    number of the MRN sequence is spent on it."""
    first = patient_sql.register_patient(CLERK, body(), reject_duplicates=True)
    before = _mrn_sequence_and_rows()
    with pytest.raises(ProbableDuplicate):
        patient_sql.register_patient(CLERK, body(phone=first["phone"], birth_date=first["birth_date"]),
                                     reject_duplicates=True)
    with pytest.raises(DuplicateIdentifier):
        patient_sql.register_patient(CLERK, body(identifiers=[first["identifiers"][1]]), reject_duplicates=False)
    assert _mrn_sequence_and_rows() == before
    after = patient_sql.register_patient(CLERK, body(), reject_duplicates=True)
    assert int(after["mrn"][:-1]) == before[0] + 1  # the next number, its check digit appended


def test_the_mrn_check_digit_in_sql_is_shared_mrns(database_url):
    from shared.mrn import is_valid_mrn, luhn_check_digit, luhn_check_digit_sql  # noqa: PLC0415

    numbers = [str(n) for n in range(1000)] + [str(7 ** k) for k in range(1, 40)] + ["0000", "9" * 30]
    with unit_of_work() as uow:
        found = dict(uow.session.execute(sa.text(f"SELECT n, {luhn_check_digit_sql('n')} FROM unnest(CAST(:n AS text[])) AS n"),
                                         {"n": numbers}).all())
    assert found == {n: luhn_check_digit(n) for n in numbers}
    assert is_valid_mrn(patient_sql.register_patient(CLERK, body(), reject_duplicates=True)["mrn"])


def test_the_birth_dates_lock_is_sent_as_its_key_never_as_the_date(database_url, monkeypatch):
    """A failed statement's text reaches PostgreSQL's log (``log_min_error_statement``): the lock's
    text holds a placeholder, and its parameter is the key, a number."""
    from shared.db import wire  # noqa: PLC0415
    from shared.services.duplicates import lock_key  # noqa: PLC0415

    sent: list = []
    transaction = wire.transaction
    monkeypatch.setattr(wire, "transaction", lambda con, statements: transaction(con, sent.extend(statements) or sent))
    patient_sql.register_patient(CLERK, body(birth_date="1961-02-03"), reject_duplicates=False)
    (lock_text, lock_params), (text, _params) = sent
    assert lock_params == (lock_key(date(1961, 2, 3)),)
    assert "1961" not in lock_text + text and "02-03" not in lock_text + text


def test_an_identifier_claimed_by_a_registration_that_commits_after_the_snapshot_is_a_409_naming_it(
        database_url, monkeypatch):
    """The statement's read of the identifiers cannot see a registration still in flight: its insert
    waits for it and, once it commits, skips the identifier, and the statement fails as a whole — a
    409 naming the owner, nothing of this registration committed, and nothing of the identifier in
    the error PostgreSQL logs."""
    import sys  # noqa: PLC0415
    import threading  # noqa: PLC0415
    import time  # noqa: PLC0415

    errors: list[BaseException | None] = []
    taken = patient_sql._identifier_taken
    monkeypatch.setattr(patient_sql, "_identifier_taken",
                        lambda con, wanted: errors.append(sys.exc_info()[1]) or taken(con, wanted))

    shared_identifier = {"system": "urn:test:race", "value": uuid.uuid4().hex}
    ours = body(identifiers=[shared_identifier], birth_date="1975-05-05")
    outcome: list[object] = []

    def register_ours() -> None:
        try:
            outcome.append(patient_sql.register_patient(CLERK, ours, reject_duplicates=True))
        except DuplicateIdentifier as exc:
            outcome.append(exc)

    with unit_of_work() as uow:  # the other registration (a different birth date: another lock)
        other = patients.register_patient(uow, CLERK, body(identifiers=[shared_identifier], birth_date="1976-06-06"))
        uow.session.flush()
        thread = threading.Thread(target=register_ours)
        thread.start()
        deadline = time.monotonic() + 10
        while not _waiting_on_a_transaction() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert outcome == [], "ours went through while the other registration held the identifier"
        other_id = other.id
    thread.join(10)
    [refused] = outcome
    assert isinstance(refused, DuplicateIdentifier), refused
    assert refused.extensions["existing_patient_id"] == str(other_id)
    assert refused.extensions["identifier_system"] == "urn:test:race"
    assert rows(Patient, Patient.family == ours.name.family) == []
    [error] = errors  # what PostgreSQL logged: the foreign key's failure, naming no identifier
    from shared.db import wire  # noqa: PLC0415

    fields = wire.server_error_fields(error)
    assert fields["C"] == "23503" and shared_identifier["value"] not in " ".join(fields.values())


def _waiting_on_a_transaction() -> bool:
    with patient_sql.autocommit() as conn:
        return bool(conn.exec_driver_sql(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'transactionid' AND NOT granted").scalar())


def test_a_probable_duplicate_is_a_409_listing_it_unless_allowed(database_url):
    first = patient_sql.register_patient(CLERK, body(), reject_duplicates=True)
    again = body(name={"family": first["name"]["family"], "given": ["zoe  MARIA"]}, phone=None, email=None,
                 birth_date=first["birth_date"])
    with pytest.raises(ProbableDuplicate) as error:
        patient_sql.register_patient(CLERK, again, reject_duplicates=True)
    assert error.value.extensions["candidates"] == [{"patient_id": first["id"], "reason": "name_and_birth_date"}]
    assert rows(Patient, Patient.family == first["name"]["family"], Patient.id != uuid.UUID(first["id"])) == []
    by_phone = body(phone=first["phone"], birth_date=first["birth_date"])
    with pytest.raises(ProbableDuplicate) as error:
        patient_sql.register_patient(CLERK, by_phone, reject_duplicates=True)
    assert error.value.extensions["candidates"] == [{"patient_id": first["id"], "reason": "phone_and_birth_date"}]
    allowed = patient_sql.register_patient(CLERK, again, reject_duplicates=False)
    assert allowed["id"] != first["id"] and allowed["birth_date"] == first["birth_date"]


@pytest.mark.parametrize("probe", [
    {"name": {"family": "VAN der-Berg", "given": ["Zoë"]}, "phone": None, "email": None},  # the name, folded
    {"name": {"family": "Other", "given": ["Ann"]}, "phone": "stored", "email": None},  # the phone
    {"name": {"family": "Other", "given": ["Ann"]}, "phone": None, "email": "STORED"},  # the e-mail, any case
    {"name": {"family": "Vanderberg", "given": ["zoe"]}, "phone": "stored", "email": "STORED"},  # all three
    {"name": {"family": "Vanderberg", "given": []}, "phone": None, "email": None},  # no first given name
])
def test_a_registrations_candidates_are_those_find_duplicates_finds(database_url, probe):
    """The CTE's rules and the ORM's come from one definition (services.duplicates.RULES): same
    candidates, same order, same reasons, whichever rules the probe's values allow."""
    from shared.services.duplicates import PatientLike, find_duplicates

    tag = uuid.uuid4()
    birth_date = date(1930, 1, 1) + timedelta(days=tag.int % 25_000)  # a day no other test's patients share
    phone, mail = f"+1415{tag.int % 10**7:07d}", f"shared.{tag.hex[:8]}@example.org"
    stored = [patient_sql.register_patient(CLERK, body(**fields, birth_date=birth_date.isoformat()), reject_duplicates=False)
              for fields in ({"name": {"family": "Vanderberg", "given": ["Zoe", "X"]}},
                             {"name": {"family": "Vanderberg", "given": []}, "email": mail.title()},
                             {"name": {"family": "Nobody", "given": ["Y"]}, "phone": phone})]
    fields = dict(probe)
    fields["phone"] = phone if probe["phone"] == "stored" else None
    fields["email"] = mail.upper() if probe["email"] == "STORED" else None
    data = body(**fields, birth_date=birth_date.isoformat(), identifiers=[])
    with unit_of_work() as uow:
        expected = [{"patient_id": str(d.patient_id), "reason": d.reason} for d in find_duplicates(uow, PatientLike(
            birth_date, data.name.family, tuple(data.name.given), data.phone, str(data.email) if data.email else None))]
    assert expected, "each probe matches a stored patient by some rule"
    assert {c["patient_id"] for c in expected} <= {p["id"] for p in stored}
    with pytest.raises(ProbableDuplicate) as error:
        patient_sql.register_patient(CLERK, data, reject_duplicates=True)
    assert error.value.extensions["candidates"] == expected


def test_reading_an_unknown_patient_is_not_found_and_audits_nothing(database_url):
    pid = uuid.uuid4()
    with pytest.raises(NotFound):
        patient_sql.read_patient(CLERK, pid)
    assert rows(AuditEntry, AuditEntry.patient_ids.contains([pid])) == []


def test_a_connection_comes_back_to_the_pool_out_of_autocommit(database_url):
    from shared.db import get_engine

    patient_sql.read_patient(CLERK, uuid.UUID(patient_sql.register_patient(CLERK, body())["id"]))
    with get_engine().connect() as conn:
        driver = conn.connection.driver_connection
        assert driver.autocommit is False
        assert conn.exec_driver_sql("SELECT 1").scalar() == 1
        assert driver._in_transaction  # pg8000 began a transaction: the ORM path's behaviour is intact


def test_the_stored_columns_are_those_the_orm_registration_stores(database_url):
    """Both paths from the same body: every column alike but ids, MRN and times (SQL NULL stays NULL)."""
    skip = {"id", "mrn", "created_at", "updated_at", "family", "family_norm"}
    table = Patient.__table__
    raw = sa.select(*(c for c in table.c if c.name not in skip), table.c.address.is_(None).label("address_is_sql_null"))
    for overrides in ({}, {"address": None, "phone": None, "email": None}):
        fast = uuid.UUID(patient_sql.register_patient(CLERK, body(**overrides))["id"])
        with unit_of_work() as uow:
            slow = patients.register_patient(uow, CLERK, body(**overrides)).id
        with unit_of_work() as uow:
            got = {pid: uow.session.execute(raw.where(table.c.id == pid)).one()._asdict() for pid in (fast, slow)}
        for row in got.values():
            row.pop("phone"), row.pop("email")
        assert got[fast] == got[slow]


def test_a_value_the_driver_cannot_send_fails_that_read_only(database_url):
    """A lone surrogate fails in pg8000 (not in PostgreSQL): shared.db's hook discards that
    connection, and the next read on the pool is answered whole, audit row included."""
    pid = uuid.UUID(patient_sql.register_patient(CLERK, body())["id"])
    with pytest.raises(UnicodeEncodeError):
        patient_sql.read_patient(Principal(key_id=None, name="clerk\ud800", scopes=frozenset()), pid)
    for _ in range(3):
        assert json.loads(patient_sql.read_patient(CLERK, pid).json)["id"] == str(pid)
    audits = rows(AuditEntry, AuditEntry.patient_ids.contains([pid]), AuditEntry.action == "patient.read")
    assert [a.principal for a in audits] == [CLERK.name] * 3


def test_past_the_prepared_statements_cap_statements_run_unprepared(database_url, monkeypatch):
    import pg8000.legacy

    pid = uuid.UUID(patient_sql.register_patient(CLERK, body())["id"])
    from shared.db import wire

    monkeypatch.setattr(wire, "MAX_PREPARED", 0)
    prepared = []
    original = pg8000.legacy.Connection.prepare_statement
    monkeypatch.setattr(pg8000.legacy.Connection, "prepare_statement",
                        lambda self, *a: prepared.append(a) or original(self, *a))
    from shared.db import get_engine

    get_engine().dispose()  # fresh connections: nothing prepared on them yet
    assert json.loads(patient_sql.read_patient(CLERK, pid).json)["id"] == str(pid)
    assert patient_sql.register_patient(CLERK, body())["version"] == 1
    assert prepared == []


def test_a_search_page_is_the_page_document_of_the_documents_a_read_answers(database_url):
    """The page's text, PostgreSQL's items as they are, is the ``PatientPage`` document the API wrote
    from decoded documents: byte for byte, cursor included, and each item a read's document."""
    from shared.schemas.search import PatientSearchQuery
    from shared.services.search import search_page

    family = "Sql" + uuid.uuid4().hex[:10]
    ids = [patient_sql.register_patient(CLERK, body(name={"family": family, "given": [g]}))["id"] for g in ("Ann", "Bea")]
    first = search_page(CLERK, PatientSearchQuery.model_validate({"family": family, "limit": "1"}))
    docs, next_cursor = json.loads(first)["items"], json.loads(first)["next_cursor"]
    second = search_page(CLERK, PatientSearchQuery.model_validate({"family": family, "cursor": next_cursor}))
    more = json.loads(second)["items"]
    assert sorted(d["id"] for d in docs + more) == sorted(ids)
    assert first == patient_sql.dumps({"items": docs, "next_cursor": next_cursor})
    assert first == f'{{"items":[{orm_document(uuid.UUID(docs[0]["id"]))}],"next_cursor":"{next_cursor}"}}'
    assert second == f'{{"items":[{orm_document(uuid.UUID(more[0]["id"]))}],"next_cursor":null}}'
    none = search_page(CLERK, PatientSearchQuery.model_validate({"family": family + "x"}))
    assert none == '{"items":[],"next_cursor":null}'
    audits = rows(AuditEntry, AuditEntry.action == "patient.search", AuditEntry.principal == CLERK.name,
                  AuditEntry.patient_ids.overlap([uuid.UUID(i) for i in ids]))
    assert sorted((a.details["returned"], a.details["params"]) for a in audits) == [(1, ["family"]), (1, ["family"])]


def test_concurrent_registrations_of_the_same_person_register_once_on_either_path(database_url):
    """The CTE path takes the ORM path's birth-date lock before its statement's snapshot: of
    concurrent registrations of one person (no identifier to collide on), one is created and every
    other sees it as a probable duplicate, whichever path each took."""
    family, n = "Sql" + uuid.uuid4().hex[:10], 6

    def data() -> PatientCreate:
        return body(name={"family": family, "given": ["Noa"]}, birth_date="1990-01-01", phone=None, email=None,
                    identifiers=[])

    def register(i: int) -> uuid.UUID:
        if i % 3:
            return uuid.UUID(patient_sql.register_patient(CLERK, data(), reject_duplicates=True)["id"])
        with unit_of_work() as uow:
            return patients.register_patient(uow, CLERK, data(), reject_duplicates=True).id

    outcomes = at_once(n, register)
    created = [o for o in outcomes if isinstance(o, uuid.UUID)]
    assert len(created) == 1, outcomes
    refused = [o for o in outcomes if isinstance(o, ProbableDuplicate)]
    assert len(refused) == n - 1 and all(r.extensions["candidate_ids"] == [str(created[0])] for r in refused)
    assert [p.id for p in rows(Patient, Patient.family == family)] == created


def test_a_pipelined_statement_on_the_driver_pool_answers_its_own(database_url):
    with pytest.raises(Exception, match="22012"):  # noqa: PT011 — pg8000's ProgrammingError
        patient_sql.pipelined_rows("SELECT 1 / %s::int", (0,))
    assert patient_sql.pipelined_rows("SELECT %s::int + 1, %s::text", (41, "zoë")) == [[42, "zoë"]]
    assert patient_sql.pipelined_rows("SELECT 1 WHERE false", ()) == []


def test_a_pipelined_statement_that_fails_leaves_its_connection_in_step(database_url):
    """Parse, Bind, Describe, Execute and Sync go out together: after the server's error (or a value
    pg8000 cannot encode, refused before anything is sent) the connection still answers its own."""
    with patient_sql.autocommit() as conn:
        driver = conn.connection.driver_connection
        with pytest.raises(sa.exc.DBAPIError, match="22012"):
            conn.exec_driver_sql("SELECT 1 / %s::int", (0,), patient_sql.PIPELINED)
        assert conn.exec_driver_sql("SELECT %s::int + 1, %s::text", (41, "zoë"), patient_sql.PIPELINED).one() == (42, "zoë")
        with pytest.raises(UnicodeEncodeError):
            conn.exec_driver_sql("SELECT %s::text", ("\ud800",), patient_sql.PIPELINED)
    with patient_sql.autocommit() as conn:
        assert conn.connection.driver_connection is not driver or conn.exec_driver_sql("SELECT 7").scalar() == 7
        assert conn.exec_driver_sql("SELECT %s::text", ("ok",), patient_sql.PIPELINED).scalar() == "ok"
        assert conn.exec_driver_sql("SELECT 1 WHERE false", (), patient_sql.PIPELINED).first() is None
