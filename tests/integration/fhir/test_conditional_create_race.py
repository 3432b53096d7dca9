"""Conditional create decided by the identifier's unique constraint, not by the look-up.

The race is made deterministic: a registration holding the identifier stays uncommitted while a
conditional create for the same identifier runs. That create's look-up finds nothing (the winner
has not committed), its INSERT … ON CONFLICT waits on the winner's row, and once the winner
commits it must answer with the winner's patient, leaving nothing of its own behind.
"""

import json
import threading
import time
import uuid

import sqlalchemy as sa

from shared.auth import SYSTEM_CLI
from shared.db import unit_of_work
from shared.fhir.patients_view import create_patient
from shared.models import Patient, PatientIdentifier
from shared.schemas.patients import PatientCreate
from shared.services.patients import register_patient


def _body(family: str, system: str, value: str) -> PatientCreate:
    return PatientCreate.model_validate_json(json.dumps({
        "name": {"family": family, "given": ["Abena"]}, "birth_date": "1992-03-04",
        "identifiers": [{"system": system, "value": value}]}))


def _waiting_on_a_lock() -> bool:
    with unit_of_work() as uow:
        return bool(uow.session.scalar(sa.text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'")))


def test_the_loser_of_a_race_answers_with_the_winners_patient(database_url):
    system, value = "urn:test:race", uuid.uuid4().hex
    loser_family = "Loser" + uuid.uuid4().hex[:8]
    outcome: dict = {}

    def loser() -> None:
        try:
            outcome["result"] = create_patient(SYSTEM_CLI, _body(loser_family, system, value), (system, value),
                                               allow_duplicate=True)
        except Exception as exc:  # noqa: BLE001 — reported by the assertion below
            outcome["error"] = exc

    with unit_of_work() as uow:
        winner = register_patient(uow, SYSTEM_CLI, _body("Winner" + uuid.uuid4().hex[:8], system, value))
        winner_id = winner.id
        thread = threading.Thread(target=loser)
        thread.start()
        deadline = time.monotonic() + 30
        while not _waiting_on_a_lock():  # the loser is blocked on the winner's identifier row
            assert thread.is_alive() and time.monotonic() < deadline, outcome
            time.sleep(0.02)
    thread.join(30)
    assert "error" not in outcome, outcome
    resource, created = outcome["result"]
    assert created is False and resource.id == winner_id
    with unit_of_work() as uow:
        owners = list(uow.session.scalars(sa.select(PatientIdentifier.patient_id).where(
            PatientIdentifier.system == system, PatientIdentifier.value == value)))
        losers = uow.session.scalar(sa.select(sa.func.count()).select_from(Patient).where(Patient.family == loser_family))
    assert owners == [winner_id] and losers == 0
