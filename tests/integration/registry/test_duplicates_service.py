"""find_duplicates: the rules, the folding, and registration races for the same person."""

import threading
import uuid
from datetime import date

import pytest

from shared.auth import SYSTEM_CLI
from shared.db import unit_of_work
from shared.errors import ProbableDuplicate
from shared.services.duplicates import Duplicate, PatientLike, find_duplicates
from shared.services.merge import merge_patients
from shared.services.patients import load_patient, register_patient
from tests.integration.registry.factories import body, new_patient, unique_family

BORN = "1957-09-10"


def found(probe):
    with unit_of_work() as uow:
        return find_duplicates(uow, probe)


def test_same_birth_date_and_folded_family_and_first_given(database_url):
    family = unique_family()
    pid = new_patient(name={"family": f"García-{family}", "given": ["José", "Luis"]}, birth_date=BORN)
    probe = PatientLike(date(1957, 9, 10), f"garcia {family.upper()}", ["JOSE"])
    assert found(probe) == [Duplicate(pid, "name_and_birth_date")]
    assert found(PatientLike(date(1957, 9, 11), f"García-{family}", ["José"])) == []
    assert found(PatientLike(date(1957, 9, 10), f"García-{family}", ["Luis"])) == []  # first given differs


def test_same_birth_date_and_phone_or_email(database_url):
    phone, email = "+3460" + str(uuid.uuid4().int)[:7], f"{uuid.uuid4().hex}@Example.org"
    by_phone = new_patient(birth_date=BORN, phone=phone)
    by_email = new_patient(birth_date=BORN, email=email)
    probe = PatientLike(date(1957, 9, 10), unique_family(), ["Other"], phone=phone, email=email.upper())
    assert sorted(found(probe)) == sorted([Duplicate(by_phone, "phone_and_birth_date"),
                                           Duplicate(by_email, "email_and_birth_date")])


def test_merged_patients_and_the_patient_itself_are_not_candidates(database_url):
    family = unique_family()
    a = new_patient(name={"family": family, "given": ["Eva"]}, birth_date=BORN)
    b = new_patient(name={"family": family, "given": ["Eva"]}, birth_date=BORN)
    with unit_of_work() as uow:
        assert find_duplicates(uow, load_patient(uow, a)) == [Duplicate(b, "name_and_birth_date")]
        merge_patients(uow, SYSTEM_CLI, b, a)
    with unit_of_work() as uow:
        assert find_duplicates(uow, load_patient(uow, a)) == []
    # a registration body works as the probe too
    assert found(body(name={"family": family, "given": ["eva"]}, birth_date=BORN)) == [Duplicate(a, "name_and_birth_date")]


def test_concurrent_registrations_of_the_same_person_register_once(database_url):
    """Without identifiers nothing unique collides: the per-birth-date lock makes the second
    registration see the first."""
    family, n = unique_family(), 6
    barrier = threading.Barrier(n)
    outcomes: list = [None] * n

    def register(i):
        barrier.wait()
        try:
            with unit_of_work() as uow:
                outcomes[i] = register_patient(uow, SYSTEM_CLI, body(name={"family": family, "given": ["Noa"]},
                                                                     birth_date="1990-01-01"), reject_duplicates=True).id
        except ProbableDuplicate as exc:
            outcomes[i] = exc

    threads = [threading.Thread(target=register, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    created = [o for o in outcomes if isinstance(o, uuid.UUID)]
    assert len(created) == 1
    for refused in (o for o in outcomes if isinstance(o, ProbableDuplicate)):
        assert refused.extensions["candidate_ids"] == [str(created[0])]


def test_duplicates_without_birth_date_or_rules_are_empty(database_url):
    assert found(PatientLike(None, "Anyone")) == []
    with pytest.raises(AttributeError):
        PatientLike.of(object())
