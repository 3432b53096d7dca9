"""Values made fit for storage: nothing guessed, nothing unsafe, a warning for what was left out."""

from datetime import date

from shared.hl7.model import Address, PatientData, PersonName
from shared.lis.values import Warnings, birth_date, clean, demographics, e164, email, patient_columns


def test_clean():
    w = Warnings()
    assert clean("  a\x00b ", 10, w, "X") == "a\ufffdb"
    assert clean("abcdef", 3, w, "OBX-6") == "abc" and "truncated:OBX-6" in w
    assert clean("   ", 3) is None and clean(None, 3) is None


def test_phone_needs_an_explicit_country_code():
    assert e164("+1 (415) 555-0100") == "+14155550100"
    assert e164("0034 612 345 678") == "+34612345678"
    assert e164("(555)555-2004") is None  # which country? not guessed
    assert e164("+0123") is None and e164("") is None


def test_email_and_birth_date():
    assert email(" Jane.Doe@Example.org ") == "jane.doe@example.org"
    assert email("mailto:a@b.co") == "a@b.co"
    assert email("not-an-email") is None
    assert birth_date(date(1013, 11, 13)) is None
    assert birth_date(date(2999, 1, 1), today=date(2026, 1, 1)) is None
    assert birth_date(date(1990, 1, 1)) == date(1990, 1, 1)


def test_demographics_and_columns():
    w = Warnings()
    patient = PatientData(
        identifiers=(), name=PersonName(family="García-López", given=("Ana", "María"), prefix=("Dr",), suffix=()),
        birth_date=date(1013, 1, 1), sex="female",
        address=Address(line=("1 Main St",), city="Town", state=None, postal_code="123", country="ES"),
        phone="612345678", email="ANA@EXAMPLE.ORG", invalid_fields=("PID-8",),
    )
    fields = demographics(patient, w)
    assert fields["name"] == {"family": "García-López", "given": ["Ana", "María"], "prefix": ["Dr"], "suffix": []}
    assert fields["birth_date"] is None and fields["phone"] is None and fields["email"] == "ana@example.org"
    assert fields["address"] == {"line": ["1 Main St"], "city": "Town", "state": None, "postal_code": "123", "country": "ES"}
    assert {"invalid:PID-8", "out_of_range:PID-7", "not_e164:PID-13"} <= set(w)
    columns = patient_columns({"name": fields["name"], "birth_date": "1990-01-02"})
    assert columns["family_norm"] == "garcialopez" and columns["first_given_norm"] == "ana"
    assert columns["birth_date"] == date(1990, 1, 2)


def test_an_empty_name_and_address_carry_nothing():
    w = Warnings()
    patient = PatientData(identifiers=(), name=PersonName(family=None, given=(), prefix=("Mr",), suffix=()),
                          birth_date=None, sex=None, address=Address((), None, None, None, None), phone=None, email=None,
                          invalid_fields=())
    fields = demographics(patient, w)
    assert fields == {"name": None, "birth_date": None, "sex": None, "address": None, "phone": None, "email": None}
    assert list(w) == []
