"""The expected outcome of every real HL7 sample in tests/fixtures/hl7 (see its MANIFEST.tsv).

Each entry states what the LIS consumer must make of the file: the status of each message in
it (with the quarantine/ignore reason), and for processed messages the patient (identifiers,
name, birth date, sex, address), the orders and the result values. Values are the ones written
in the file; identifiers, order numbers and MSH-10 carry the per-run tag of
`tests.support.hl7_tag` (``-<tag>``), which `check` adds before comparing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support import lis_db

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "hl7"


@dataclass(frozen=True)
class Res:
    code: str | None
    value: str | None
    units: str | None = None
    reference_range: str | None = None
    flags: tuple[str, ...] = ()
    status: str | None = "F"
    display: str | None = None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Ord:
    placer: str | None
    filler: str | None
    code: str | None
    display: str | None
    status: str
    results: tuple[Res, ...] = ()
    priority: str | None = None
    notes: str | None = None


@dataclass(frozen=True)
class Pat:
    identifiers: frozenset[tuple[str, str, str | None]]  # (value, system, type), values untagged
    family: str
    given: tuple[str, ...]
    birth_date: dt.date | None
    sex: str
    suffix: tuple[str, ...] = ()
    address: dict[str, Any] | None = None
    phone: str | None = None


@dataclass(frozen=True)
class Sample:
    file: str
    statuses: tuple[str, ...]
    reasons: tuple[str | None, ...] = (None,)
    patient: Pat | None = None
    orders: tuple[Ord, ...] = ()
    warnings: frozenset[str] = field(default_factory=frozenset)  # at least these
    message_type: str | None = None

    @property
    def raw(self) -> bytes:
        return (FIXTURES / self.file).read_bytes()


def _addr(line: list[str], city: str | None, state: str | None, postal: str | None, country: str | None) -> dict[str, Any]:
    return {"line": line, "city": city, "state": state, "postal_code": postal, "country": country}


def _q(file: str, reason: str) -> Sample:
    return Sample(file, ("quarantined",), (reason,))


NOT_E164 = "not_e164:PID-13"

SAMPLES: list[Sample] = [
    Sample("aidbox__ADT-A08__1.hl7", ("processed",), message_type="ADT^A08",
           patient=Pat(frozenset({("P-DEMO-UPDATE", "HOSPITAL", "MR")}), "NEWLASTNAME", ("NEWFIRST", "N"),
                       dt.date(1990, 1, 1), "female", address=_addr(["456 New Address"], "Newtown", "NT", "00004", "USA")),
           warnings=frozenset({NOT_E164})),
    Sample("aidbox__ORU-R01__1.hl7", ("processed",), message_type="ORU^R01",
           patient=Pat(frozenset({("TEST001", "HOSP", None)}), "PATIENT", ("TEST",), None, "unknown"),
           orders=(Ord(None, "FIL001", "LAB123", None, "preliminary",
                       (Res("2823-3", "4.2", "mmol/L", "3.5-5.5", status="P", display="Potassium"),)),)),
    Sample("aidbox__ORU-R01__2.hl7", ("processed",), message_type="ORU^R01",
           patient=Pat(frozenset({("TEST-0004", "HOSPITAL", "MR")}), "TESTPATIENT", ("DELTA",), dt.date(2000, 4, 4), "female"),
           orders=(Ord("ORD002", "FIL002", "56117", "eGFR", "final",
                       (Res("56117", ">90", "mL/min/1.73 sq.m.", ">60.0", display="eGFR",
                            notes=("eGFR calculation based on CKD-EPI equation.", "",
                                   "This test is not validated for acute illness.")),)),)),
    Sample("aidbox__ORU-R01__3.hl7", ("processed",), message_type="ORU^R01",
           patient=Pat(frozenset({("TEST-0002", "HOSPITAL", "MR")}), "TESTPATIENT", ("BETA",), dt.date(2000, 2, 2), "female"),
           orders=(Ord("R26-TEST00012", "26ORM-005CH00006", "LAB90", "HEMOGLOBIN A1C", "final",
                       (Res("1237770270", "6.2", "%", "4.0-6.0", ("H",), display="HBA1C"),)),)),
    _q("aidbox__ORU-R01__4.hl7", "missing_segment:OBR"),
    Sample("efferent__ADT-A01__1.hl7", ("processed",), message_type="ADT^A01",
           patient=Pat(frozenset({("PATID1234", "ADT1", "MR"), ("123456789", "USSSA", "SS")}), "fake", ("fakey", "A"),
                       dt.date(1961, 6, 15), "male", suffix=("III",),
                       address=_addr(["9999 N FAKE STREET"], "FAKESTAR", "TN", "99999?1020", None)),
           warnings=frozenset({NOT_E164})),
    _q("efferent__ADT-A04__1.hl7", "missing_field:PID-3"),
    _q("efferent__ADT-A04__2.hl7", "missing_segment:PID"),
    _q("efferent__ADT-A08__1.hl7", "missing_segment:PID"),
    Sample("efferent__ADT-O01__1.hl7", ("processed",), message_type="ADT^O01",
           patient=Pat(frozenset({("454721", "StJohn", None)}), "DOE", ("JOHN",), dt.date(1948, 2, 3), "male",
                       address=_addr(["254 MYSTREET AVE"], "MYTOWN", "OH", "44123", "USA")),
           warnings=frozenset({NOT_E164})),
    Sample("efferent__ORM-O01__1.hl7", ("processed",), message_type="ORM^O01",
           patient=Pat(frozenset({("42311", "LIS", None)}), "Jane", ("Doe", "T"), dt.date(1992, 11, 12), "male",
                       address=_addr(["123 Worth Drive"], "Troy", "OH", "45373", None)),
           orders=(Ord("11777-60", None, "4241", "BRAZIL NUT (F18) IGE - 86003", "requested",
                       notes="some text\nsome text after new line\nissue Efferent-Health#82\n"
                             "some text\r\nsome text after new line\r\nissue Efferent-Health#81"),)),
    _q("efferent__ORM-O01__2.hl7", "missing_segment:ORC"),
    _q("efferent__ORU-R01__1.hl7", "no_control_id"),
    Sample("elixirhl7__ADT-A01__1.hl7", ("processed",), message_type="ADT^A01",
           patient=Pat(frozenset({("56782445", "UAReg", "PI")}), "KLEINSAMPLE", ("BARRY", "Q"), dt.date(1962, 9, 10), "male",
                       suffix=("JR",), address=_addr(["260 GOODWIN CREST DRIVE"], "BIRMINGHAM", "AL", "35209", None))),
    Sample("elixirhl7__ADT-A03__1.hl7", ("processed",), message_type="ADT^A03",
           patient=Pat(frozenset({("33333", "LakeMichMC", "MR")}), "", (), None, "female",
                       address=_addr([], None, None, "53217", None))),
    # Two orders share placer number 09984662, told apart by its namespace (ORC-2.2 L103312.1 and
    # L103312.2): two orders, each under both its numbers. The first is cut off mid-OBR/OBX (no value,
    # no status).
    Sample("elixirhl7__ORU-R01__1.hl7", ("processed",), message_type="ORU^R01",
           patient=Pat(frozenset({("A0995614951", "EHR LAB", "MR"), ("A09956149510", "EHR LAB", "SS"),
                                  ("A09956149511", "EHR LAB", "PI"), ("A09956149512", "EHR LAB", "AN")}),
                       "TEST", ("TEST",), dt.date(1956, 9, 27), "male",
                       address=_addr(["35544 TEST TEST", "Apt. 535"], "Red Hook", "NY", "12571", None)),
           orders=(Ord("09984662", "0907:QAX:C00002R.1", "2951-2", "Sodium [Moles/volume", "preliminary",
                       (Res("2951-2", None, status=None, display="Sodium [Moles/volume#"),), priority="routine"),
                   Ord("09984662", "0907:QAX:C00002R.2", "IMO0002", "Potassium measurement", "final",
                       (Res("IMO0002", "=4.2", "mEq/L", "3.5-5.0", ("N",), display="Potassium measurement"),),
                       priority="routine")),
           warnings=frozenset({NOT_E164})),
    _q("hl7apy__ADT-A01__1.hl7", "missing_segment:PID"),
    _q("hl7apy__MALFORMED__1.hl7", "no_message_type"),
    _q("hl7apy__MALFORMED__2.hl7", "no_control_id"),
    _q("hl7apy__MALFORMED__3.hl7", "no_message_type"),
    Sample("hl7apy__OML-O33__1.hl7", ("processed",), message_type="OML^O33",
           patient=Pat(frozenset({("1010110909194822", "GATEWAY_IL", "PK")}), "PIPPO", ("PLUTO",), dt.date(1979, 5, 15),
                       "male", address=_addr(["VIA DI TOPOLINO", "CAGLIARI"], "CAGLIARI", None, "09100", "100")),
           orders=tuple(Ord(n, n, code, display, "scheduled", priority="routine") for n, code, display in (
               ("83428", "TPO", "ANTI THYROPEROXIDASE ANTIBODIES(TPO)"), ("83425", "CA", "S-CALCIUM"),
               ("83426", "HDL", "HDL CHOLESTEROL"), ("83427", "LDL", "LDL CHOLESTEROL")))),
    Sample("hl7apy__RSP-SLI__1.hl7", ("ignored",), ("unsupported_type:RSP^SLI",), message_type="RSP^SLI"),
    Sample("lfh__ADT-A01__1.hl7", ("processed",), message_type="ADT^A01",
           patient=Pat(frozenset({("PID1234", "A", "MR"), ("1234568965", "USA", "SS")}), "DOE", ("JOHN", "A"),
                       dt.date(1980, 2, 2), "female", address=_addr(["111 TEST_STREET_NAME"], "TEST_CITY", "NY", "111-1111", "USA")),
           warnings=frozenset({NOT_E164})),
    # The merge itself is exercised with a known MRG patient in the merge tests; alone, MR2 is unknown.
    Sample("lfh__ADT-A40__1.hl7", ("processed",), message_type="ADT^A40",
           patient=Pat(frozenset({("MR1", "XYZ", "MR")}), "", (), None, "unknown"),
           warnings=frozenset({"merge_source_unknown"})),
    Sample("lfh__ORU-R01__1.hl7", ("processed",), message_type="ORU^R01",
           patient=Pat(frozenset({("0d70c6c8", "MRN", None)}), "Patient", ("Autogenerated",), dt.date(1963, 3, 6), "male",
                       address=_addr([], None, None, "L6G 1C7", None)),
           orders=(Ord("PON_0d70c6c8", "FON_0d70c6c8", "1487", "ECHO CARDIOGRAM COMPLETE", "final", (
               Res("12345", None), Res(None, None), Res(None, "[PII] Emergency Department"),
               Res(None, "ED Encounter Arrival Date: [ADDRESS] [PERSONALNAME]:"))),),
           warnings=frozenset({NOT_E164})),
    Sample("pyhl7__ACK-A01__1.hl7", ("ignored",), ("unsupported_type:ACK^A01",), message_type="ACK^A01"),
    Sample("pyhl7__ADT-A01__1.hl7", ("processed",), message_type="ADT^A01",
           patient=Pat(frozenset({("2148790", "MSH_MRN", "MR"), ("162840", "MSH_EMPI", "CM")}), "RUFUSS", ("MELLODIAL",),
                       dt.date(1952, 11, 29), "female",
                       address=_addr(["221 CANVIEW AVENUE", "66-D"], "BRONX", "NY", "10454", "USA")),
           warnings=frozenset({NOT_E164})),
    Sample("pyhl7__ADT-A04__1.hl7", ("processed",), message_type="ADT^A04",
           patient=Pat(frozenset({("0000112234", "100", "A")}), "XXXXXXXXXX", (), None, "unknown",
                       address=_addr([], "RICHMOND", None, "3121", None)),
           warnings=frozenset({"invalid:PID-8", "out_of_range:PID-7"})),
    # FHS/BHS file: three messages; the third repeats the first's MSH-10, so it is a duplicate.
    Sample("pyhl7__ADT-A04__2.hl7", ("processed", "processed", "duplicate"), (None, None, "same_control_id"),
           message_type="ADT^A04",
           patient=Pat(frozenset({("0000112234", "100", "A")}), "XXXXXXXXXX", (), None, "unknown",
                       address=_addr([], "RICHMOND", None, "3121", None))),
    _q("pyhl7__MALFORMED__1.hl7", "no_msh"),
    _q("pyhl7__MALFORMED__2.hl7", "no_message_type"),
    _q("pyhl7__MALFORMED__3.hl7", "no_message_type"),
    Sample("pyhl7__ORU-R01__1.hl7", ("processed",), message_type="ORU^R01",
           patient=Pat(frozenset({("555-44-4444", "ELAB-3", None)}), "EVERYWOMAN", ("EVE", "E"), None, "female",
                       address=_addr(["153 FERNWOOD DR."], "STATESVILLE", "OH", "35292", None)),
           orders=(Ord("845439", "1045813", "1554-5", "GLUCOSE", "final", (
               Res("1553-5", "^182", "mg/dl", "70_105", ("H",), display="GLUCOSE"),
               Res("1554-5", "182", "mg/dl", "70_105", ("H",), display="GLUCOSE"))),),
           warnings=frozenset({"invalid:PID-7", NOT_E164})),
    _q("pyhl7__ORU-R01__2.hl7", "missing_segment:OBR"),
]


def _t(value: str | None, tag: str | None) -> str | None:
    return f"{value}-{tag}" if value and tag else value


def check(sample: Sample, rows: list[Any], tag: str | None) -> None:
    """Assert the stored messages and the patient/order/result state one delivery of `sample` produced."""
    assert [r.status for r in rows] == list(sample.statuses), (sample.file, [(r.status, r.error_code) for r in rows])
    assert [r.error_code for r in rows] == list(sample.reasons) * (len(rows) if len(sample.reasons) == 1 else 1)
    for row in rows:
        assert row.raw, "the raw message is kept"
        assert row.processed_at is not None and row.lag_seconds is not None
        if sample.message_type and row.status != "quarantined":
            assert row.message_type == sample.message_type
    processed = [r for r in rows if r.status == "processed"]
    assert sample.warnings <= set(processed[0].warnings if processed else rows[0].warnings), rows[0].warnings
    if sample.patient is None:
        assert all(r.patient_id is None for r in rows)
        return
    p = sample.patient
    value, system, _type = next(iter(p.identifiers))
    patient_id = lis_db.patient_id_by_identifier(system, _t(value, tag))
    assert patient_id is not None
    assert {r.patient_id for r in processed} == {patient_id}
    stored = lis_db.patient(patient_id)
    assert stored["identifiers"] == {(_t(v, tag), s, t) for v, s, t in p.identifiers}
    assert len(stored["mrn_identifier"]) == 1 and stored["mrn"] == stored["mrn_identifier"][0]
    assert stored["source"] == "lis" and stored["status"] == "active"
    assert (stored["family"], tuple(stored["given"]), tuple(stored["suffix"])) == (p.family, p.given, p.suffix)
    assert (stored["birth_date"], stored["sex"], stored["phone"]) == (p.birth_date, p.sex, p.phone)
    assert stored["address"] == p.address
    orders = lis_db.orders(patient_id)
    assert len(orders) == len(sample.orders)
    for expected in sample.orders:
        order = next(o for o in orders if o["filler_number"] == _t(expected.filler, tag)
                     and o["placer_number"] == _t(expected.placer, tag))
        assert (order["code"], order["code_display"], order["status"]) == (expected.code, expected.display, expected.status)
        assert order["priority"] == expected.priority and order["notes"] == expected.notes
        results = lis_db.results(order["id"])
        got = sorted(((r["code"], r["value"], r["units"], r["reference_range"], tuple(r["abnormal_flags"]), r["status"],
                      r["code_display"], tuple(r["notes"])) for r in results), key=repr)
        want = sorted(((e.code, e.value, e.units, e.reference_range, e.flags, e.status, e.display, e.notes)
                       for e in expected.results), key=repr)
        assert got == want, sample.file
        assert all(r["patient_id"] == patient_id and r["version"] == 1 for r in results)


def by_file() -> dict[str, Sample]:
    return {s.file: s for s in SAMPLES}
