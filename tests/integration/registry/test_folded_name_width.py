"""A name within its 200 characters can fold past them (ß → ss, ﬁ → fi): every writer stores its
folded form cut to the column's width (``normalize.fold_key``), and a second registration of the same
name is still found as its probable duplicate — by the SQL registration, the ORM's and the LIS's rules
alike. Before, the API's writers stored ``fold(name)`` whole: PostgreSQL refused the row (value too
long for varchar(200)) and a valid registration answered 500."""

from __future__ import annotations

import json
import uuid
from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from shared.auth import Principal
from shared.db import unit_of_work
from shared.errors import ProbableDuplicate
from shared.models import Patient
from shared.normalize import KEY_WIDTH, fold, fold_key
from shared.schemas.patients import PatientCreate
from shared.services import patient_sql, patients
from shared.services.duplicates import PatientLike, find_duplicates

pytestmark = pytest.mark.integration

CLERK = Principal(key_id=None, name="test:clerk", scopes=frozenset({"patients:write"}))


def long_body(birth_date: date, **extra: object) -> PatientCreate:
    # 150 characters each, 290 and 300 once folded ("ß" folds to "ss", "ﬁ" to "fi"); a distinct head
    # (within the first 200 folded characters) keeps each body's family its own
    family = uuid.uuid4().hex[:10] + "ß" * 140
    return PatientCreate.model_validate_json(json.dumps({
        "name": {"family": family, "given": ["ﬁ" * 150]}, "birth_date": birth_date.isoformat(), **extra}))


def stored(patient_id: uuid.UUID) -> tuple[str, str]:
    with unit_of_work() as uow:
        row = uow.session.execute(sa.select(Patient.family_norm, Patient.first_given_norm)
                                  .where(Patient.id == patient_id)).one()
    return row.family_norm, row.first_given_norm


def a_day() -> date:
    return date(1930, 1, 1) + timedelta(days=uuid.uuid4().int % 25_000)


def test_the_folded_names_are_longer_than_the_columns():
    data = long_body(a_day())
    assert len(data.name.family) == 150 and len(fold(data.name.family)) > KEY_WIDTH
    assert fold_key(data.name.family) == fold(data.name.family)[:KEY_WIDTH]


def test_the_sql_registration_stores_them_cut_and_finds_the_same_name_again(database_url):
    data = long_body(a_day())
    first = patient_sql.register(CLERK, data, reject_duplicates=True)
    assert stored(first.id) == (fold(data.name.family)[:KEY_WIDTH], fold(data.name.given[0])[:KEY_WIDTH])
    with pytest.raises(ProbableDuplicate) as refused:
        patient_sql.register(CLERK, data, reject_duplicates=True)
    assert refused.value.extensions["candidates"] == [{"patient_id": str(first.id), "reason": "name_and_birth_date"}]


def test_the_orm_registration_and_update_store_them_cut_and_find_duplicates_finds_them(database_url):
    data = long_body(a_day())
    with unit_of_work() as uow:
        patient_id = patients.register_patient(uow, CLERK, data).id
    assert stored(patient_id) == (fold_key(data.name.family), fold_key(data.name.given[0]))
    with unit_of_work() as uow:
        found = find_duplicates(uow, PatientLike(data.birth_date, data.name.family, tuple(data.name.given)))
    assert [(d.patient_id, d.reason) for d in found] == [(patient_id, "name_and_birth_date")]
    other = long_body(data.birth_date)
    with unit_of_work() as uow:  # a JSON merge patch of the name (the PATCH route's service)
        patients.update_patient(uow, CLERK, patient_id, {"name": {"family": other.name.family}}, expected_version=1)
    assert fold_key(other.name.family) != fold_key(data.name.family)
    assert stored(patient_id)[0] == fold_key(other.name.family)
