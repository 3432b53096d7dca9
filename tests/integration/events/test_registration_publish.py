"""A registration (``services.patient_sql``) publishes its event right after its commit, and a
refused one (409) publishes nothing."""

import uuid

import pytest
import sqlalchemy as sa

from shared.auth import Principal
from shared.db import unit_of_work
from shared.errors import ProbableDuplicate
from shared.events import catalog
from shared.models import OutboxEvent
from shared.schemas.patients import PatientCreate
from shared.services import patient_sql
from tests.support.sink import http_sink

pytestmark = pytest.mark.integration
CLERK = Principal(key_id=None, name="test:clerk", scopes=frozenset({"patients:write"}))


def _body(family: str) -> PatientCreate:
    return PatientCreate.model_validate_json(f'{{"name": {{"family": "{family}", "given": ["Eve"]}}, "birth_date": "1970-05-06"}}')


def _outbox(subjects: list[str]) -> list[OutboxEvent]:
    with unit_of_work() as uow:
        return list(uow.session.scalars(sa.select(OutboxEvent).where(OutboxEvent.subject.in_(subjects))))


def test_a_registration_publishes_after_its_commit_and_a_refused_one_nothing(use_sink):
    family = "Pub" + uuid.uuid4().hex[:10]
    with http_sink() as sink:
        use_sink(k_sink=sink.url)
        doc = patient_sql.register_patient(CLERK, _body(family), reject_duplicates=True)
        with pytest.raises(ProbableDuplicate):
            patient_sql.register_patient(CLERK, _body(family), reject_duplicates=True)
    [row] = _outbox([doc["id"]])
    assert row.type == catalog.PATIENT_REGISTERED and row.published_at is not None and row.attempts == 1
    assert sink.ids() == [str(row.id)]
