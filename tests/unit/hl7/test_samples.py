"""Every golden sample in tests/fixtures/hl7 (provenance in MANIFEST.tsv there) with its outcome.

Expectations were written from the raw files, counting fields by hand, not copied from the
parser's output. Notable readings: the GHH normative example puts the result status "F" in
OBR-24 (one field early), so its order status is None; the ELR sample redacts OBR-7, ORC-9 and
OBX-14 with asterisks, which are reported as invalid fields.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from shared.hl7 import HL7Error, Message, parse_message, split_messages

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "hl7"
UTC = UTC
MINUS_5 = timezone(timedelta(hours=-5))


def at(*parts: int, tz: timezone = UTC) -> datetime:
    return datetime(*parts, tzinfo=tz)  # type: ignore[misc]


@dataclass(frozen=True)
class Res:
    set_id: str | None
    code: tuple[str | None, str | None, str | None]
    value_type: str | None
    value: str | None
    units: str | None = None
    reference_range: str | None = None
    abnormal_flags: tuple[str, ...] = ()
    status: str | None = None
    observed_at: datetime | None = None
    notes: tuple[str, ...] = ()
    invalid_fields: tuple[str, ...] = ()


@dataclass(frozen=True)
class Ord:
    placer: str | None
    filler: str | None
    code: tuple[str | None, str | None, str | None]
    results: tuple[Res, ...] = ()
    control: str | None = None
    status: str | None = None
    priority: str | None = None
    ordered_at: datetime | None = None
    notes: tuple[str, ...] = ()
    invalid_fields: tuple[str, ...] = ()


@dataclass(frozen=True)
class Msg:
    type: str
    trigger: str | None
    control_id: str
    ids: tuple[tuple[str, str], ...] = ()
    family: str | None = None
    birth: date | None = None
    sex: str | None = None
    orders: tuple[Ord, ...] = ()
    segment_ids: tuple[str, ...] | None = None
    more: dict[str, Any] = field(default_factory=dict)  # dotted attribute path -> value


@dataclass(frozen=True)
class Err:
    reason: str


NO_PATIENT = {"patient": None}
GHH_SYSTEM = "POST 12H CFST:MCNC:PT:SER/PLAS:QN"
LFH_TIME = at(2020, 8, 2, 12, 44, 55)

CASES: dict[str, Err | tuple[Msg, ...]] = {
    "aidbox__ADT-A08__1.hl7": (
        Msg("ADT", "A08", "MSG-A08-002", ids=(("P-DEMO-UPDATE", "HOSPITAL"),), family="NEWLASTNAME",
            birth=date(1990, 1, 1), sex="female", segment_ids=("MSH", "EVN", "PID", "PV1"),
            more={"header.structure": "ADT_A08", "header.sending_facility": "FACILITY",
                  "header.message_datetime": at(2023, 12, 16, 11, 0, 0), "header.version": "2.5.1",
                  "patient.identifiers.0.type": "MR", "patient.name.given": ("NEWFIRST", "N"),
                  "patient.address.line": ("456 New Address",), "patient.address.city": "Newtown",
                  "patient.address.state": "NT", "patient.address.postal_code": "00004",
                  "patient.address.country": "USA", "patient.phone": "5558888888", "patient.email": None,
                  "patient.invalid_fields": ()}),
    ),
    "aidbox__ORU-R01__1.hl7": (
        Msg("ORU", "R01", "TEST-MSG-001", ids=(("TEST001", "HOSP"),), family="PATIENT",
            orders=(Ord(None, "FIL001", ("LAB123", None, None), status="P", ordered_at=at(2026, 1, 1),
                        results=(Res("1", ("2823-3", "Potassium", "LN"), "NM", "4.2", "mmol/L", "3.5-5.5",
                                     status="P", observed_at=at(2026, 1, 1)),)),),
            more={"header.sending_application": "LAB", "header.receiving_facility": "DEST",
                  "header.structure": None, "patient.name.given": ("TEST",), "patient.identifiers.0.type": None,
                  "orders.0.control": None}),
    ),
    "aidbox__ORU-R01__2.hl7": (
        Msg("ORU", "R01", "TEST-MSG-001", ids=(("TEST-0004", "HOSPITAL"),), family="TESTPATIENT",
            birth=date(2000, 4, 4), sex="female",
            orders=(Ord("ORD002", "FIL002", ("56117", "eGFR", "LOCAL"), control="RE", status="F",
                        ordered_at=at(2026, 1, 6, 9, 10),
                        results=(Res("1", ("56117", "eGFR", "LOCAL"), "SN", ">90", "mL/min/1.73 sq.m.", ">60.0",
                                     status="F", observed_at=at(2026, 1, 6, 9, 10),
                                     notes=("eGFR calculation based on CKD-EPI equation.", "",
                                            "This test is not validated for acute illness.")),)),),
            segment_ids=("MSH", "PID", "PV1", "ORC", "OBR", "OBX", "NTE", "NTE", "NTE"),
            more={"orders.0.results.0.values": (">90",)}),
    ),
    "aidbox__ORU-R01__3.hl7": (
        Msg("ORU", "R01", "TEST-MSG-001", ids=(("TEST-0002", "HOSPITAL"),), family="TESTPATIENT",
            birth=date(2000, 2, 2), sex="female",
            orders=(Ord("R26-TEST00012", "26ORM-005CH00006", ("LAB90", "HEMOGLOBIN A1C", "4MEAP"), control="RE",
                        status="F", ordered_at=at(2026, 1, 5, 9, 10),
                        results=(Res("0", ("1237770270", "HBA1C", "4MLRR"), "NM", "6.2", "%", "4.0-6.0", ("H",),
                                     "F", at(2026, 1, 5, 9, 10)),)),),
            more={"header.message_datetime": at(2026, 1, 5, 9, 17, 43)}),
    ),
    "aidbox__ORU-R01__4.hl7": Err("missing_segment:OBR"),  # OBX with no OBR
    "efferent__ADT-A01__1.hl7": (
        Msg("ADT", "A01", "MSG00001", ids=(("PATID1234", "ADT1"), ("123456789", "USSSA")), family="fake",
            birth=date(1961, 6, 15), sex="male", segment_ids=("MSH", "EVN", "PID", "NK1", "PV1"),
            more={"patient.identifiers.1.type": "SS", "patient.name.given": ("fakey", "A"),
                  "patient.name.suffix": ("III",), "patient.address.postal_code": "99999?1020",
                  "patient.address.city": "FAKESTAR", "patient.phone": "(999)999?1212",
                  "header.sending_application": "ADT1", "header.version": "2.3.1"}),
    ),
    "efferent__ADT-A04__1.hl7": Err("missing_field:PID-3"),  # bare "PID" segment
    "efferent__ADT-A04__2.hl7": Err("missing_segment:PID"),
    "efferent__ADT-A08__1.hl7": Err("missing_segment:PID"),  # only MSH and ZZ1
    "efferent__ADT-O01__1.hl7": (
        Msg("ADT", "O01", "MSGID12349876", ids=(("454721", "StJohn"),), family="DOE", birth=date(1948, 2, 3),
            sex="male", segment_ids=("MSH", "PID", "NK1", "NK1", "PV1"),
            more={"patient.name.given": ("JOHN",), "patient.address.line": ("254 MYSTREET AVE",),
                  "patient.address.city": "MYTOWN", "patient.address.country": "USA",
                  "patient.phone": "(216)123-4567"}),
    ),
    "efferent__ORM-O01__1.hl7": (
        Msg("ORM", "O01", "3149", ids=(("42311", "LIS"),), family="Jane", birth=date(1992, 11, 12), sex="male",
            orders=(Ord("11777-60", None, ("4241", "BRAZIL NUT (F18) IGE - 86003", "AllinaCodes"), control="NW",
                        ordered_at=at(2017, 3, 31),
                        notes=("some text\nsome text after new line\nissue Efferent-Health#82",
                               "some text\r\nsome text after new line\r\nissue Efferent-Health#81")),),
            more={"patient.name.given": ("Doe", "T"), "patient.phone": "9373328660",
                  "patient.address.city": "Troy", "patient.address.postal_code": "45373",
                  "header.sending_facility": None, "orders.0.priority": None}),
    ),
    "efferent__ORM-O01__2.hl7": Err("missing_segment:ORC"),  # ORM with PID only
    "efferent__ORU-R01__1.hl7": Err("no_control_id"),
    "elixirhl7__ADT-A01__1.hl7": (
        Msg("ADT", "A01", "01052901", ids=(("56782445", "UAReg"),), family="KLEINSAMPLE", birth=date(1962, 9, 10),
            sex="male", segment_ids=("MSH", "EVN", "PID", "PV1", "OBX", "OBX", "AL1", "DG1"),
            more={"header.message_datetime": at(2006, 5, 29, 9, 1, 31, tz=MINUS_5),
                  "header.sending_facility": "XYZHospC", "patient.name.given": ("BARRY", "Q"),
                  "patient.name.suffix": ("JR",), "patient.identifiers.0.type": "PI",
                  "patient.address.line": ("260 GOODWIN CREST DRIVE",), "patient.address.postal_code": "35209",
                  "patient.phone": None}),
    ),
    "elixirhl7__ADT-A03__1.hl7": (
        Msg("ADT", "A03", "NIST-SS-003.32", ids=(("33333", "LakeMichMC"),), family=None, sex="female",
            more={"patient.name": None, "header.sending_application": None,
                  "header.sending_facility": "LakeMichMC", "patient.address.postal_code": "53217",
                  "patient.address.line": (), "patient.address.city": None, "patient.identifiers.0.type": "MR"}),
    ),
    "elixirhl7__ORU-R01__1.hl7": (
        Msg("ORU", "R01", "PHELR.1.45543",
            ids=(("A0995614951", "EHR LAB"), ("A09956149510", "EHR LAB"), ("A09956149511", "EHR LAB"),
                 ("A09956149512", "EHR LAB")),
            family="TEST", birth=date(1956, 9, 27), sex="male",
            orders=(
                Ord("09984662", "0907:QAX:C00002R.1", ("2951-2", "Sodium [Moles/volume", None), control="RE",
                    priority="routine", invalid_fields=("ORC-9",),
                    results=(Res("1", ("2951-2", "Sodium [Moles/volume#", None), "SN", None),)),
                Ord("09984662", "0907:QAX:C00002R.2", ("IMO0002", "Potassium measurement", "LN"), control="RE",
                    status="F", priority="routine", invalid_fields=("OBR-7",),
                    results=(Res("1", ("IMO0002", "Potassium measurement", "LN"), "SN", "=4.2", "mEq/L",
                                 "3.5-5.0", ("N",), "F", None, invalid_fields=("OBX-14",)),)),
            ),
            segment_ids=("MSH", "SFT", "PID", "NK1", "PV1", "ORC", "OBR", "TQ1", "OBX", "SPM",
                         "ORC", "OBR", "TQ1", "OBX", "SPM"),
            more={"header.sending_application": "EHR LAB", "header.sending_facility": "H Facility FACILITY",
                  "header.receiving_facility": "RCVING FACILITY", "header.processing_id": "D",
                  "header.message_datetime": at(2022, 9, 7, 14, 58, 28, tz=MINUS_5),
                  "patient.identifiers.2.type": "PI", "patient.address.line": ("35544 TEST TEST", "Apt. 535"),
                  "patient.address.city": "Red Hook", "patient.phone": "111-111-111"}),
    ),
    "hl7apy__ADT-A01__1.hl7": Err("missing_segment:PID"),  # MSH-2 "^&&^", MSH only
    "hl7apy__MALFORMED__1.hl7": Err("no_message_type"),
    "hl7apy__MALFORMED__2.hl7": Err("no_control_id"),  # MSH-9 "ADT^", nothing after
    "hl7apy__MALFORMED__3.hl7": Err("no_message_type"),
    "hl7apy__OML-O33__1.hl7": (
        Msg("OML", "O33", "978226056138290600", ids=(("1010110909194822", "GATEWAY_IL"),), family="PIPPO",
            birth=date(1979, 5, 15), sex="male",
            orders=tuple(
                Ord(number, number, code, control="NW", status="SC", priority="routine",
                    ordered_at=at(2011, 7, 8, 16, 28, 17))
                for number, code in (
                    ("83428", ("TPO", "ANTI THYROPEROXIDASE ANTIBODIES(TPO)", None)),
                    ("83425", ("CA", "S-CALCIUM", None)),
                    ("83426", ("HDL", "HDL CHOLESTEROL", None)),
                    ("83427", ("LDL", "LDL CHOLESTEROL", None)),
                )
            ),
            more={"patient.identifiers.0.type": "PK", "patient.name.given": ("PLUTO",),
                  "patient.address.line": ("VIA DI TOPOLINO", "CAGLIARI"), "patient.address.city": "CAGLIARI",
                  "patient.address.postal_code": "09100", "patient.address.country": "100",
                  "header.structure": "OML_O33", "header.charset": None}),
    ),
    "hl7apy__RSP-SLI__1.hl7": (
        Msg("RSP", "SLI", "430102", segment_ids=("MSH",),
            more={**NO_PATIENT, "header.structure": "RSP_K11", "header.sending_application": "LIP",
                  "header.receiving_facility": "LB", "header.version": "2.5", "header.processing_id": "D",
                  "header.message_datetime": at(2011, 12, 7, 12, 10, 30), "header.charset": None}),
    ),
    "lfh__ADT-A01__1.hl7": (
        Msg("ADT", "A01", "102", ids=(("PID1234", "A"), ("1234568965", "USA")), family="DOE",
            birth=date(1980, 2, 2), sex="female",
            segment_ids=("MSH", "EVN", "PID", "PV1", "OBX", "AL1", "AL1", "PRB"),
            more={"header.charset": "ASCII", "header.version": "2.6", "header.processing_id": "T",
                  "patient.name.given": ("JOHN", "A"), "patient.address.postal_code": "111-1111",
                  "patient.phone": "(905)111-1111"}),
    ),
    "lfh__ADT-A40__1.hl7": (
        Msg("ADT", "A40", "00000003", ids=(("MR1", "XYZ"),), segment_ids=("MSH", "EVN", "PID", "MRG"),
            more={"merge.prior_identifiers.0.value": "MR2", "merge.prior_identifiers.0.system": "XYZ",
                  "merge.prior_identifiers.0.type": None, "patient.name": None, "header.structure": "ADT_A39"}),
    ),
    "lfh__ORU-R01__1.hl7": (
        Msg("ORU", "R01", "MSGID00231", ids=(("0d70c6c8", "MRN"),), family="Patient", birth=date(1963, 3, 6),
            sex="male",
            orders=(Ord("PON_0d70c6c8", "FON_0d70c6c8", ("1487", "ECHO CARDIOGRAM COMPLETE", None), status="F",
                        ordered_at=LFH_TIME,
                        results=(
                            Res("1", ("12345", None, None), "ST", None, status="F", observed_at=LFH_TIME),
                            Res("2", (None, None, None), "TX", None, status="F", observed_at=LFH_TIME),
                            Res("3", (None, None, None), "TX", "[PII] Emergency Department", status="F",
                                observed_at=LFH_TIME),
                            Res("4", (None, None, None), "TX", "ED Encounter Arrival Date: [ADDRESS] [PERSONALNAME]:",
                                status="F", observed_at=LFH_TIME),
                        )),),
            more={"patient.address.postal_code": "L6G 1C7", "patient.address.city": None,
                  "patient.phone": "4042808", "orders.0.notes": ()}),
    ),
    "pyhl7__ACK-A01__1.hl7": (
        Msg("ACK", "A01", "HL7ACK00001", segment_ids=("MSH", "MSA"),
            more={**NO_PATIENT, "header.version": "2.3", "header.structure": "ACK",
                  "header.sending_facility": "DH"}),
    ),
    "pyhl7__ADT-A01__1.hl7": (
        Msg("ADT", "A01", "Q150084616T145947960", ids=(("2148790", "MSH_MRN"), ("162840", "MSH_EMPI")),
            family="RUFUSS", birth=date(1952, 11, 29), sex="female",
            segment_ids=("MSH", "PID", "PV1", "DG1", "IN1", "IN2", "IN1", "IN2", "IN1"),
            more={"patient.identifiers.1.type": "CM", "patient.name.given": ("MELLODIAL",),
                  "patient.address.line": ("221 CANVIEW AVENUE", "66-D"), "patient.address.city": "BRONX",
                  "patient.phone": "3472444150"}),
    ),
    "pyhl7__ADT-A04__1.hl7": (
        Msg("ADT", "A04", "12334456778890", ids=(("0000112234", "100"),), family="XXXXXXXXXX",
            birth=date(1013, 11, 13), sex=None, segment_ids=("MSH", "EVN", "PID", "PD1", "NK1", "PV1"),
            more={"patient.invalid_fields": ("PID-8",), "header.charset": "ASCII",
                  "header.sending_facility": "ABCHS", "patient.address.city": "RICHMOND",
                  "patient.address.postal_code": "3121", "patient.name.given": ()}),
    ),
    "pyhl7__ADT-A04__2.hl7": tuple(
        Msg("ADT", "A04", control_id, ids=(("0000112234", "100"),), family="XXXXXXXXXX",
            birth=date(1013, 11, 13), segment_ids=("MSH", "EVN", "PID", "PD1", "NK1", "PV1"))
        for control_id in ("12334456778890", "12334456778891", "12334456778890")
    ),
    "pyhl7__MALFORMED__1.hl7": Err("no_msh"),  # batch with segments but no MSH
    "pyhl7__MALFORMED__2.hl7": Err("no_message_type"),  # "$" separators, MSH-4 onwards missing
    "pyhl7__MALFORMED__3.hl7": Err("no_message_type"),
    "pyhl7__ORU-R01__1.hl7": (  # OBX-3.3 really holds "POST 12H ..." where the coding system belongs
        Msg("ORU", "R01", "CNTRL-3456", ids=(("555-44-4444", "ELAB-3"),), family="EVERYWOMAN", birth=None,
            sex="female",
            orders=(Ord("845439", "1045813", ("1554-5", "GLUCOSE", None), ordered_at=at(2002, 2, 15, 7, 30),
                        results=(
                            Res("1", ("1554-5", "GLUCOSE", GHH_SYSTEM), "SN", "182", "mg/dl", "70_105", ("H",), "F",
                                at(2002, 2, 15, 7, 30)),
                            Res("2", ("1553-5", "GLUCOSE", GHH_SYSTEM), "FN", "^182", "mg/dl", "70_105", ("H",), "F",
                                at(2002, 2, 15, 7, 30)),
                        )),),
            more={"patient.invalid_fields": ("PID-7",), "patient.name.given": ("EVE", "E"),
                  "patient.address.city": "STATESVILLE", "patient.phone": "(206)3345232",
                  "header.sending_facility": "ELAB-3"}),
    ),
    "pyhl7__ORU-R01__2.hl7": Err("missing_segment:OBR"),  # PID only
}


def _resolve(message: Message, path: str) -> Any:
    value: Any = message
    for part in path.split("."):
        value = value[int(part)] if part.isdigit() else getattr(value, part)
    return value


def _check_result(actual: Any, expected: Res) -> None:
    assert actual.set_id == expected.set_id
    assert (actual.code.code, actual.code.display, actual.code.system) == expected.code
    assert actual.value_type == expected.value_type
    assert actual.value == expected.value
    assert actual.units == expected.units
    assert actual.reference_range == expected.reference_range
    assert actual.abnormal_flags == expected.abnormal_flags
    assert actual.status == expected.status
    assert actual.observed_at == expected.observed_at
    assert actual.notes == expected.notes
    assert actual.invalid_fields == expected.invalid_fields


def _check_order(actual: Any, expected: Ord) -> None:
    assert actual.placer_number == expected.placer
    assert actual.filler_number == expected.filler
    assert (actual.code.code, actual.code.display, actual.code.system) == expected.code
    assert actual.control == expected.control
    assert actual.status == expected.status
    assert actual.priority == expected.priority
    assert actual.ordered_at == expected.ordered_at
    assert actual.notes == expected.notes
    assert actual.invalid_fields == expected.invalid_fields
    assert len(actual.results) == len(expected.results)
    for result, wanted in zip(actual.results, expected.results, strict=True):
        _check_result(result, wanted)


def _check(message: Message, expected: Msg) -> None:
    header = message.header
    assert (header.message_type, header.trigger_event, header.control_id) == (
        expected.type,
        expected.trigger,
        expected.control_id,
    )
    if expected.ids:
        assert message.patient is not None
        assert tuple((i.value, i.system) for i in message.patient.identifiers) == expected.ids
        assert (message.patient.name.family if message.patient.name else None) == expected.family
        assert message.patient.birth_date == expected.birth
        assert message.patient.sex == expected.sex
    assert len(message.orders) == len(expected.orders)
    for order, wanted in zip(message.orders, expected.orders, strict=True):
        _check_order(order, wanted)
    if expected.segment_ids is not None:
        assert message.segment_ids == expected.segment_ids
    for path, value in expected.more.items():
        assert _resolve(message, path) == value, path
    assert len(message.groups) == 1 and message.groups[0].problem is None


@pytest.mark.parametrize("name", sorted(CASES))
def test_sample(name: str) -> None:
    raw = (FIXTURES / name).read_bytes()
    expected = CASES[name]
    if isinstance(expected, Err):
        with pytest.raises(HL7Error) as caught:
            for message in split_messages(raw) or [raw]:
                parse_message(message)
        assert caught.value.reason == expected.reason
        with pytest.raises(HL7Error) as whole:
            parse_message(raw)
        assert whole.value.reason == expected.reason
        return
    messages = split_messages(raw)
    assert len(messages) == len(expected)
    for message_bytes, wanted in zip(messages, expected, strict=True):
        assert message_bytes.startswith(b"MSH")
        _check(parse_message(message_bytes), wanted)
    if len(messages) == 1:
        _check(parse_message(raw), expected[0])


def test_every_fixture_has_a_case_and_a_provenance_row() -> None:
    files = {path.name for path in FIXTURES.glob("*.hl7")}
    with (FIXTURES / "MANIFEST.tsv").open(newline="", encoding="utf-8") as manifest:
        listed = {row["file"] for row in csv.DictReader(manifest, delimiter="\t")}
    assert files == set(CASES)
    assert files == listed


def test_several_messages_in_one_call_are_refused() -> None:
    raw = (FIXTURES / "pyhl7__ADT-A04__2.hl7").read_bytes()
    with pytest.raises(HL7Error) as caught:
        parse_message(raw)
    assert caught.value.reason == "multiple_messages"
