"""The name tokens carry their patient's page keys (family_norm, status), kept by the database
(migration 0017): a search by name reads its page from the tokens alone, so a token row whose keys
lag behind its patient would put the patient on the wrong page or show it under the wrong status."""

import json
import uuid

import sqlalchemy as sa

from shared.auth import SYSTEM_CLI
from shared.db import get_engine, unit_of_work
from shared.schemas.search import PatientSearchQuery
from shared.services import patient_sql
from shared.services.merge import merge_patients
from shared.services.patients import deactivate_patient, update_patient
from shared.services.search import search_page
from tests.integration.registry.factories import body, new_patient, unique_family

KEYS = sa.text("SELECT p.family_norm, p.status, array_agg(DISTINCT (t.family_norm, t.status)::text) AS token_keys, "
               "count(t.*) AS tokens FROM patients p LEFT JOIN patient_name_tokens t ON t.patient_id = p.id "
               "WHERE p.id = :id GROUP BY p.family_norm, p.status")


def keys(pid: uuid.UUID) -> tuple[str, str, list[str]]:
    """The patient's (family_norm, status) and the distinct keys its token rows carry."""
    with get_engine().connect() as conn:
        row = conn.execute(KEYS, {"id": pid}).one()
    assert row.tokens > 0
    return row.family_norm, row.status, row.token_keys


def follow(pid: uuid.UUID, family_norm: str, status: str) -> None:
    assert keys(pid) == (family_norm, status, [f"({family_norm},{status})"])


def found(name: str, status: str = "active,inactive,merged") -> list[str]:
    page = search_page(SYSTEM_CLI, PatientSearchQuery.model_validate({"name": name, "status": status}))
    return [d["id"] for d in json.loads(page)["items"]]


def test_the_tokens_follow_a_rename_a_deactivation_and_a_merge(database_url):
    old, new = unique_family(), unique_family()
    pid, target = new_patient(name={"family": old, "given": ["Zoë"]}), new_patient()
    follow(pid, old.lower(), "active")
    with unit_of_work() as uow:
        update_patient(uow, SYSTEM_CLI, pid, {"name": {"family": new}}, expected_version=1)
    follow(pid, new.lower(), "active")
    assert found(new) == [str(pid)] and found(old) == []
    with unit_of_work() as uow:
        deactivate_patient(uow, SYSTEM_CLI, pid, expected_version=2)
    follow(pid, new.lower(), "inactive")
    assert found(new, "active") == [] and found(new, "inactive") == [str(pid)]
    with unit_of_work() as uow:
        merge_patients(uow, SYSTEM_CLI, pid, target)
    follow(pid, new.lower(), "merged")
    assert found(new, "active,inactive") == [] and found(new, "merged") == [str(pid)]


def test_a_writer_that_knows_nothing_of_the_copies_keeps_them_right(database_url):
    """Raw SQL: a patient's family_norm changed without touching its tokens, and a token inserted
    with keys of its own (the bench's clone copies another patient's) — the patient's win."""
    family = unique_family()
    pid = new_patient(name={"family": family, "given": ["Ana"]})
    with get_engine().begin() as conn:
        conn.execute(sa.text("UPDATE patients SET family_norm = 'zz' || family_norm WHERE id = :id"), {"id": pid})
        conn.execute(sa.text("INSERT INTO patient_name_tokens (patient_id, kind, token, family_norm, status) "
                             "VALUES (:id, 'given', 'anabel', 'aaa', 'merged')"), {"id": pid})
    follow(pid, "zz" + family.lower(), "active")


def test_tokens_inserted_in_one_statement_with_their_patient_carry_its_keys(database_url):
    """The LIS fast path writes the patient and its tokens as independent parts of one statement,
    in an order PostgreSQL does not fix: here the tokens' part comes first and finds no patient;
    the keys are filled when the statement ends. The SQL registration reads the patient's row."""
    pid, family = uuid.uuid4(), unique_family()
    with get_engine().begin() as conn:
        conn.execute(sa.text(
            "WITH tok AS (INSERT INTO patient_name_tokens (patient_id, kind, token) VALUES (:id, 'family', lower(:f))), "
            "pat AS (INSERT INTO patients (id, mrn, status, family, given, prefix, suffix, family_norm, first_given_norm, "
            "sex, timezone, comm_email, comm_sms, source, version, created_at, updated_at) VALUES (:id, :mrn, 'inactive', "
            ":f, '{}', '{}', '{}', lower(:f), '', 'unknown', 'UTC', false, false, 'lis', 1, now(), now())) SELECT 1"),
            {"id": pid, "f": family, "mrn": "T" + uuid.uuid4().hex[:12]})
    follow(pid, family.lower(), "inactive")
    other = unique_family()
    doc = patient_sql.register_patient(SYSTEM_CLI, body(name={"family": other, "given": ["Ana"]}))
    follow(uuid.UUID(doc["id"]), other.lower(), "active")
