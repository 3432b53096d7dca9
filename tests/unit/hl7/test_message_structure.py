"""ORU^R01 read by the structure of its version (PATIENT_RESULT groups, PATIENT_OBSERVATION, the
ORDER_OBSERVATION segments PRT/CTD/TQ1/FT1/CTI/SPM), OBX-4 sub-ids, order-number namespaces and
child-order links — on the real messages of tests/fixtures/hl7-fidelity (provenance in its
MANIFEST.tsv) and on variants that insert the v2.7+ segments where the standard puts them."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from shared.hl7 import HL7Error, content_digest, parse_message

FIDELITY = Path(__file__).resolve().parents[2] / "fixtures" / "hl7-fidelity"


def raw(name: str) -> bytes:
    return (FIDELITY / name).read_bytes()


def test_every_fidelity_fixture_has_a_provenance_row() -> None:
    with (FIDELITY / "MANIFEST.tsv").open(newline="", encoding="utf-8") as manifest:
        rows = list(csv.DictReader(manifest, delimiter="\t"))
    assert {r["file"] for r in rows} == {p.name for p in FIDELITY.glob("*.hl7")}
    assert all(r["source_repo"] and r["source_path"] and r["source_commit_or_version"] for r in rows)
    assert all("DERIVED" in r["notes"] for r in rows if r["file"].startswith("derived__"))


def test_patient_level_observations_before_the_first_order() -> None:
    message = parse_message(raw("derived__ORU-R01__patient-observations.hl7"))
    [group] = message.groups
    assert [(o.code.code, o.value, o.units, o.notes) for o in group.observations] == [
        ("8302-2", "183", "cm", ("Measured at intake.",)), ("82810-3", "Not pregnant", None, ())]
    [order] = group.orders
    assert [r.code.code for r in order.results] == ["30341-2"]  # the ESR only: no observation taken
    assert order.notes == ("Patient is extremely anxious about needles used for drawing blood.",)
    assert (order.placer_number, order.placer_namespace, order.filler_number, order.filler_namespace) == (
        "ORD723222", "NIST EHR", "R-783274", "NIST Lab Filler")


def _v28(data: bytes) -> bytes:
    """The same message as a v2.8 sender writes it: PRT after the patient observation, after the
    OBR's NTE and after the OBX; CTD after TQ1; FT1 and CTI after the OBX; TXA before the SPM."""
    out = []
    for line in data.split(b"\r"):
        if line.startswith(b"MSH|"):
            line = line.replace(b"|2.5.1|", b"|2.8|")
        out.append(line)
        if line.startswith(b"OBX|2|CWE|82810-3"):
            out.append(b"PRT|1|AD|||OP^Observing practitioner^HL70912|57422^Radon^Nicholas")
        if line.startswith(b"NTE|1||Patient is"):
            out.append(b"PRT|2|AD|||OP^Observing practitioner^HL70912|57422^Radon^Nicholas")
        if line.startswith(b"TQ1|"):
            out.append(b"CTD|EP^Emergency contact person^HL70131|Contact^Person")
        if line.startswith(b"OBX|1|NM|30341-2"):
            out += [b"PRT|3|AD|||RO^Results reporter^HL70912|2343242^Knowsalot^Phil",
                    b"NTE|1||Result note after PRT.", b"FT1|1|||20110331|20110331|CG|85652^ESR",
                    b"CTI|STUDY-1", b"TXA|1|LR|TX"]
    return b"\r".join(out)


def test_v28_segments_stand_where_the_standard_puts_them() -> None:
    plain = parse_message(raw("derived__ORU-R01__patient-observations.hl7"))
    v28 = parse_message(_v28(raw("derived__ORU-R01__patient-observations.hl7")))
    assert v28.header.version == "2.8"
    [group] = v28.groups
    assert group.observations == plain.groups[0].observations
    [order] = group.orders
    [esr] = order.results
    assert (esr.value, esr.notes) == ("10", ("Result note after PRT.",))
    assert order.notes == plain.orders[0].notes and order.priority == plain.orders[0].priority


def test_an_order_result_is_never_a_patient_observation_and_the_reason_names_the_real_gap() -> None:
    # PID and OBX without any OBR: the OBX is a patient-level observation, and what is wrong with
    # the message is that it has no order (ORU_R01 requires an OBR), as before.
    with pytest.raises(HL7Error) as caught:
        parse_message(b"MSH|^~\\&|LAB|HOSP||DEST|20260101||ORU^R01|T1|P|2.5\rPID|1||ERR2||TEST^ERROR\r"
                      b"OBX|1|NM|TEST||100|mg/dL||||F\r")
    assert caught.value.reason == "missing_segment:OBR"


def test_specimen_observations_belong_to_their_order() -> None:
    message = parse_message(b"MSH|^~\\&|HealthSentry|WEST|VISN|VISN|201011041640||ORU^R01^ORU_R01|1|P|2.5.1\r"
                            b"PID|1||9339683996^^^WEST^MR||Miller^Paul\r"
                            b"OBR|1||2010273000016^EHR|548-8^Culture Sputum^LN\r"
                            b"SPM|1|||119334006^Sputum^SCT\r"
                            b"OBX|1|CE|548-8^Culture Sputum^LN|1|^Bordetella pertussis^SNM|||A|||F\r")
    [order] = message.orders
    assert [(r.value, r.sub_id) for r in order.results] == [("Bordetella pertussis", "1")]


def test_isolates_and_their_susceptibility_panels() -> None:
    message = parse_message(raw("nistlri__ORU-R01__GU-RU-004.01.hl7"))
    culture, *panels = message.orders
    assert [(r.code.code, r.sub_id, r.value) for r in culture.results] == [
        ("625-4", "1", "Enterohemorrhagic Escherichia coli, serotype O157:H7"),
        ("625-4", "2", "Salmonella I, group O:4"), ("625-4", "3", "Shigella flexneri")]
    assert (culture.placer_number, culture.placer_namespace) == ("ORD723222-4", "2.16.840.1.113883.3.72.5.24")
    assert [(p.filler_number, p.parent.result_sub_id, p.parent.result_code.code, p.parent.placer_number,
             p.parent.placer_namespace, p.parent.filler_number) for p in panels] == [
        (f"R-783274-{n + 4}", str(n), "625-4", "ORD723222-4", "2.16.840.1.113883.3.72.5.24", "R-783274-4")
        for n in (1, 2, 3)]
    assert [[r.value for r in p.results] for p in panels] == [["<0.06", "0.05", "0.05"]] * 3


def test_two_patients_are_two_groups() -> None:
    message = parse_message(raw("derived__ORU-R01__two-patients.hl7"))
    assert [(g.patient.identifiers[0].value, [o.filler_number for o in g.orders]) for g in message.groups] == [
        ("TEST-0004", ["FIL002"]), ("TEST-0002", ["26ORM-005CH00006"])]


def test_merge_groups_of_an_a40_with_two_pairs() -> None:
    message = parse_message(b"MSH|^~\\&|REGADT|MCM|RSP1P8|MCM|200301051530|SEC|ADT^A40^ADT_A39|3|P|2.5\r"
                            b"EVN|A40|200301051530\rPID|||MR1^^^XYZ^MR\rMRG|MR2^^^XYZ\rPID|||MR3^^^XYZ\rMRG|MR4^^^XYZ\r")
    assert [(g.patient.identifiers[0].value, g.merge.prior_identifiers[0].value) for g in message.groups] == [
        ("MR1", "MR2"), ("MR3", "MR4")]


@pytest.mark.parametrize("variant", [
    lambda b: b.replace(b"\n", b"\r\n"),
    lambda b: b.replace(b"\n", b"\r"),
    lambda b: b"\x0b" + b.replace(b"\n", b"\r") + b"\x1c\r",
    lambda b: b"\xef\xbb\xbf" + b + b"\n\n",
    lambda b: b"FHS|^~\\&\rBHS|^~\\&\r" + b.replace(b"\n", b"\r") + b"BTS|1\rFTS|1\r",
], ids=["crlf", "cr", "mllp", "bom-blank-lines", "batch-envelope"])
def test_the_digest_ignores_terminators_and_framing(variant) -> None:
    original = raw("aidbox__ORU-R01__with-specimen.hl7")
    assert content_digest(variant(original)) == content_digest(original)


def test_the_digest_tells_other_content_apart() -> None:
    first, second = raw("aidbox__ORU-R01__with-specimen.hl7"), raw("aidbox__ORU-R01__multiple-obr.hl7")
    assert content_digest(first) != content_digest(second)
    assert content_digest(first) != content_digest(first.replace(b"|4.2|", b"|4.3|"))
