"""Mapping rules and message-level quirks, on small hand-built messages."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from shared.hl7 import HL7Error, Message, parse_message

MSH_ORU = "MSH|^~\\&|LABAPP|LABFAC|LIS|HOSP|20240301101500||ORU^R01^ORU_R01|CTRL1|P|2.5.1"
MSH_ADT = "MSH|^~\\&|ADTAPP|ADTFAC|LIS|HOSP|20240301101500||ADT^A08|CTRL2|P|2.5"
PID = "PID|1||MRN1^^^HOSP^MR||DOE^JANE^Q^JR^DR^MD||19800202|F|||1 MAIN ST^APT 2^SPRINGFIELD^IL^62701^USA||555-1234"


def build(*segments: str, sep: str = "\r") -> bytes:
    return sep.join(segments).encode("utf-8")


def parse(*segments: str, sep: str = "\r") -> Message:
    return parse_message(build(*segments, sep=sep))


def reason(*segments: str) -> str:
    with pytest.raises(HL7Error) as caught:
        parse(*segments)
    return caught.value.reason


# --- line endings and whitespace ---------------------------------------------------------


@pytest.mark.parametrize("sep", ["\r", "\n", "\r\n", "\n\r", "\r\n\r\n"])
def test_segment_separators(sep: str) -> None:
    message = parse(MSH_ORU, PID, "OBR|1|P1|F1|GLU", "OBX|1|NM|GLU||5.5|mmol/L|||||F", sep=sep)
    assert message.segment_ids == ("MSH", "PID", "OBR", "OBX")
    assert message.orders[0].results[0].status == "F"


def test_mixed_separators_blank_lines_and_trailing_whitespace() -> None:
    raw = (
        MSH_ORU + "  \r\n\n" + PID + "\t\r" + "OBR|1|P1|F1|GLU \n \r\nOBX|1|NM|GLU||5.5|mmol/L|||||F   \r\n "
    ).encode()
    message = parse_message(raw)
    assert message.segment_ids == ("MSH", "PID", "OBR", "OBX")
    assert message.orders[0].code.code == "GLU"
    assert message.orders[0].results[0].status == "F"


def test_raw_line_break_inside_a_text_value_continues_the_segment() -> None:
    message = parse(MSH_ORU, PID, "OBR|1|P1|F1|RPT", "OBX|1|TX|RPT||first line", "second line||||||F")
    result = message.orders[0].results[0]
    assert result.value == "first line\nsecond line"
    assert result.status == "F"


def test_literal_backslash_r_between_segments() -> None:
    raw = (MSH_ORU + "\\r" + PID + "\\rOBR|1|P1|F1|GLU\\rOBX|1|NM|GLU||5.5||||||F").encode()
    message = parse_message(raw)
    assert message.segment_ids == ("MSH", "PID", "OBR", "OBX")
    assert message.header.version == "2.5.1"


def test_two_msh_revealed_by_literal_backslash_r_are_refused() -> None:
    raw = (MSH_ADT + "\\r" + PID + "\\r" + MSH_ADT + "\\r" + PID).encode()
    with pytest.raises(HL7Error) as caught:
        parse_message(raw)
    assert caught.value.reason == "multiple_messages"


# --- header and required content ----------------------------------------------------------


def test_header() -> None:
    header = parse(MSH_ADT, PID).header
    assert header.message_type == "ADT" and header.trigger_event == "A08" and header.structure is None
    assert header.control_id == "CTRL2"
    assert header.sending_application == "ADTAPP" and header.sending_facility == "ADTFAC"
    assert header.receiving_facility == "HOSP"
    assert header.message_datetime == datetime(2024, 3, 1, 10, 15, tzinfo=UTC)
    assert header.processing_id == "P" and header.version == "2.5" and header.charset is None


@pytest.mark.parametrize(
    ("segments", "expected"),
    [
        (("MSH|^~\\&|A|F|||20240101|||CTRL|P|2.5", PID), "no_message_type"),
        (("MSH|^~\\&|A|F|||20240101||^A01|CTRL|P|2.5", PID), "no_message_type"),
        (("MSH|^~\\&|A|F|||20240101||ADT^A08||P|2.5", PID), "no_control_id"),
        (("MSH|^~\\&|A|F|||20240101||ADT^A08|  |P|2.5", PID), "no_control_id"),
        (('MSH|^~\\&|A|F|||20240101||ADT^A08|""|P|2.5', PID), "no_control_id"),
        (("MSH|^~\\&|A|F|||20240101||ADT^A08",), "no_control_id"),  # truncated MSH
        (("MSH|^~\\&|A|F",), "no_message_type"),  # truncated harder
        ((MSH_ADT, "EVN|A08"), "missing_segment:PID"),
        ((MSH_ADT, "PID|1||||DOE^JANE"), "missing_field:PID-3"),
        ((MSH_ORU, "OBR|1|P|F|X", "OBX|1|NM|X||1"), "missing_segment:PID"),
        ((MSH_ORU, PID), "missing_segment:OBR"),
        ((MSH_ORU, PID, "OBX|1|NM|X||1"), "missing_segment:OBR"),
        ((MSH_ORU, PID, "ORC|RE|P1"), "missing_segment:OBR"),
        (("MSH|^~\\&|A|F|||20240101||ADT^A40|C|P|2.5", PID), "missing_segment:MRG"),
        (("MSH|^~\\&|A|F|||20240101||ADT^A40|C|P|2.5", PID, "MRG|"), "missing_field:MRG-1"),
        (("MSH|^~\\&|A|F|||20240101||ORM^O01|C|P|2.3", PID), "missing_segment:ORC"),
        (("MSH|^~\\&|A|F|||20240101||OUL^R22|C|P|2.5", "SPM|1"), "missing_segment:OBR"),
    ],
)
def test_required_content(segments: tuple[str, ...], expected: str) -> None:
    assert reason(*segments) == expected


def test_oru_with_results_under_an_orc_only_order_is_accepted() -> None:
    message = parse(MSH_ORU, PID, "ORC|RE|P1|F1", "OBX|1|NM|X||1||||||F")
    assert message.orders[0].placer_number == "P1" and len(message.orders[0].results) == 1


def test_oul_without_patient_is_accepted() -> None:
    message = parse("MSH|^~\\&|A|F|||20240101||OUL^R22|C|P|2.5", "SPM|1", "OBR|1|P1|F1|X", "OBX|1|NM|X||1")
    assert message.patient is None and len(message.orders) == 1


def test_ack_and_other_types_need_nothing_more() -> None:
    message = parse("MSH|^~\\&|A|F|||20240101||ACK^A01|C|P|2.5", "MSA|AA|X")
    assert message.patient is None and message.orders == () and message.merge is None


# --- patient -------------------------------------------------------------------------------


def test_patient_fields() -> None:
    patient = parse(MSH_ADT, PID).patient
    assert patient is not None
    assert [(i.value, i.system, i.type) for i in patient.identifiers] == [("MRN1", "HOSP", "MR")]
    assert patient.name is not None
    assert (patient.name.family, patient.name.given, patient.name.prefix, patient.name.suffix) == (
        "DOE",
        ("JANE", "Q"),
        ("DR",),
        ("JR", "MD"),
    )
    assert patient.birth_date == date(1980, 2, 2) and patient.sex == "female"
    assert patient.address is not None
    assert (patient.address.line, patient.address.city, patient.address.state) == (
        ("1 MAIN ST", "APT 2"),
        "SPRINGFIELD",
        "IL",
    )
    assert (patient.address.postal_code, patient.address.country) == ("62701", "USA")
    assert patient.phone == "555-1234" and patient.email is None and patient.invalid_fields == ()


@pytest.mark.parametrize(
    ("pid", "expected"),
    [
        # CX-4.1, else CX-4.2, else MSH-4.1
        ("PID|1||A1^^^AUTH&1.2.3&ISO^MR", [("A1", "AUTH", "MR")]),
        ("PID|1||A1^^^&1.2.3&ISO^MR", [("A1", "1.2.3", "MR")]),
        ("PID|1||A1", [("A1", "ADTFAC", None)]),
        # repetitions, empty CX-1 skipped
        ("PID|1||A1^^^X~^^^Y^MR~A3^^^Z^PI", [("A1", "X", None), ("A3", "Z", "PI")]),
        # explicit null and whitespace count as empty
        ('PID|1||""^^^X~ ^^^Y~A3', [("A3", "ADTFAC", None)]),
        # fall back to PID-2, then PID-4, only when PID-3 yields nothing
        ("PID|1|EXT1^^^E||ALT1^^^A", [("EXT1", "E", None)]),
        ("PID|1|||ALT1^^^A", [("ALT1", "A", None)]),
        ("PID|1|EXT1^^^E|^^^X|ALT1", [("EXT1", "E", None)]),
        ("PID|1|EXT1|MAIN1|ALT1", [("MAIN1", "ADTFAC", None)]),
    ],
)
def test_identifier_rules(pid: str, expected: list[tuple[str, str, str | None]]) -> None:
    patient = parse(MSH_ADT, pid).patient
    assert patient is not None
    assert [(i.value, i.system, i.type) for i in patient.identifiers] == expected


def test_identifier_system_defaults_to_lis_without_sending_facility() -> None:
    patient = parse("MSH|^~\\&|APP||||20240101||ADT^A08|C|P|2.5", "PID|1||A1").patient
    assert patient is not None and patient.identifiers[0].system == "LIS"


def test_name_with_subcomponents_and_repetitions() -> None:
    patient = parse(MSH_ADT, "PID|1||A1||van der Berg&van der&Berg^Anna~ALIAS^NAME").patient
    assert patient is not None and patient.name is not None
    assert (patient.name.family, patient.name.given) == ("van der Berg", ("Anna",))


def test_empty_first_name_repetition_gives_no_name() -> None:
    patient = parse(MSH_ADT, "PID|1||A1||^^^^^^~SMITH^JOHN").patient
    assert patient is not None and patient.name is None


@pytest.mark.parametrize(
    ("raw", "sex", "invalid"),
    [
        ("M", "male", ()),
        ("f", "female", ()),
        ("O", "other", ()),
        ("U", "unknown", ()),
        ("A", "other", ()),
        ("N", "other", ()),
        ("Female", "female", ()),
        ("", None, ()),
        ('""', None, ()),
        ("1", None, ("PID-8",)),
    ],
)
def test_sex(raw: str, sex: str | None, invalid: tuple[str, ...]) -> None:
    patient = parse(MSH_ADT, f"PID|1||A1||||19800202|{raw}").patient
    assert patient is not None and (patient.sex, patient.invalid_fields) == (sex, invalid)


@pytest.mark.parametrize(
    ("raw", "birth", "invalid"),
    [
        ("19800202", date(1980, 2, 2), ()),
        ("198002021015-0500", date(1980, 2, 2), ()),
        ("1980", None, ("PID-7",)),
        ("198002", None, ("PID-7",)),
        ("19801302", None, ("PID-7",)),
        ("unknown", None, ("PID-7",)),
        ("", None, ()),
    ],
)
def test_birth_date(raw: str, birth: date | None, invalid: tuple[str, ...]) -> None:
    patient = parse(MSH_ADT, f"PID|1||A1||DOE||{raw}|F").patient
    assert patient is not None and (patient.birth_date, patient.invalid_fields) == (birth, invalid)


@pytest.mark.parametrize(
    ("xtn", "phone", "email"),
    [
        ("(555)123-4567^PRN^PH", "(555)123-4567", None),
        ("^PRN^PH^^1^555^1234567", "5551234567", None),
        ("^PRN^PH^^^^1234567", "1234567", None),
        ("^NET^Internet^jane@example.org~^PRN^PH^^^555^7654321", "5557654321", "jane@example.org"),
        ("^PRN^PH^^^^^^^^^+15551234567", "+15551234567", None),
        ("jane@example.org^NET^X.400", None, "jane@example.org"),
        ("~555-0000", "555-0000", None),
    ],
)
def test_phone_and_email(xtn: str, phone: str | None, email: str | None) -> None:
    patient = parse(MSH_ADT, f"PID|1||A1||||||||||{xtn}").patient
    assert patient is not None and (patient.phone, patient.email) == (phone, email)


def test_address_first_repetition_only() -> None:
    patient = parse(MSH_ADT, "PID|1||A1||||||||^^^^1234~9 ELSEWHERE^^TOWN").patient
    assert patient is not None and patient.address is not None
    assert (patient.address.line, patient.address.city, patient.address.postal_code) == ((), None, "1234")


# --- orders and results -------------------------------------------------------------------


def test_several_orders_and_attachment_of_results_and_notes() -> None:
    message = parse(
        MSH_ORU,
        PID,
        "NTE|1||patient-level note, not mapped",
        "ORC|RE|PL1^EPIC|FI1^LAB||CM",
        "OBR|1|PL1^EPIC|FI1^LAB|CBC^Blood count^L|||20240301080000|||||||||||||||20240301090000||HEM|F",
        "NTE|1||order note",
        "OBX|1|NM|HGB^Hemoglobin^LN||13.2|g/dL|12-16|N|||F|||20240301081500",
        "NTE|1||result note 1",
        "NTE|2||",
        "NTE|3||result note 2~second line",
        "OBX|2|NM|WBC^Leukocytes^LN||12.5|10*9/L^^UCUM|4-11|H~A|||C",
        "OBR|2|PL2|FI2|^^^2345-7^Glucose^LN|||20240301083000||||||||||||||||||P",
        "OBX|1|ST|2345-7^Glucose^LN||pending||||||P",
        "ZXT|custom|data",
    )
    assert message.segment_ids[-1] == "ZXT"
    first, second = message.orders
    assert (first.placer_number, first.filler_number, first.control, first.status) == ("PL1", "FI1", "RE", "CM")
    assert (first.code.code, first.code.display, first.code.system) == ("CBC", "Blood count", "L")
    assert first.ordered_at == datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
    assert first.notes == ("order note",)
    hgb, wbc = first.results
    assert (hgb.value, hgb.units, hgb.reference_range, hgb.abnormal_flags) == ("13.2", "g/dL", "12-16", ("N",))
    assert hgb.observed_at == datetime(2024, 3, 1, 8, 15, tzinfo=UTC)
    assert hgb.notes == ("result note 1", "", "result note 2\nsecond line")
    assert (wbc.units, wbc.abnormal_flags, wbc.status, wbc.notes) == ("10*9/L", ("H", "A"), "C", ())
    assert wbc.observed_at == first.ordered_at  # OBX-14 empty: OBR-7
    assert (second.placer_number, second.control, second.status) == ("PL2", None, "P")
    assert (second.code.code, second.code.display, second.code.system) == ("2345-7", "Glucose", "LN")
    assert second.results[0].value == "pending"


def test_units_text_when_identifier_empty() -> None:
    message = parse(MSH_ORU, PID, "OBR|1|P|F|X", "OBX|1|NM|X||1|^per litre")
    assert message.orders[0].results[0].units == "per litre"


@pytest.mark.parametrize(
    ("value_type", "obx5", "values", "value"),
    [
        ("SN", ">^90", (">90",), ">90"),
        ("SN", "^1^:^128", ("1:128",), "1:128"),
        ("SN", "^10^-^20", ("10-20",), "10-20"),
        ("NM", "4.2~4.3", ("4.2", "4.3"), "4.2"),
        ("TX", "line 1~  indented~~line 4  ~", ("line 1", "  indented", "", "line 4"), "line 1\n  indented\n\nline 4"),
        ("FT", "a\\.br\\b", ("a\nb",), "a\nb"),
        ("ST", "Smith & Jones ^ Co", ("Smith & Jones ^ Co",), "Smith & Jones ^ Co"),
        ("CWE", "POS^Positive^HL70078~^^^^^^^^free text", ("Positive", "free text"), "Positive"),
        ("CE", "260373001^^SCT", ("260373001",), "260373001"),
        ("", "12", ("12",), "12"),
        ("NM", "", (), None),
        ("TX", "~", (), None),
    ],
)
def test_result_values(value_type: str, obx5: str, values: tuple[str, ...], value: str | None) -> None:
    result = parse(MSH_ORU, PID, "OBR|1|P|F|X", f"OBX|1|{value_type}|X||{obx5}").orders[0].results[0]
    assert (result.values, result.value) == (values, value)


def test_coded_values_keep_the_codes() -> None:
    result = parse(MSH_ORU, PID, "OBR|1|P|F|X", "OBX|1|CWE|X||POS^Positive^HL70078").orders[0].results[0]
    assert [(c.code, c.display, c.system) for c in result.coded_values] == [("POS", "Positive", "HL70078")]


def test_invalid_result_time_is_reported_not_replaced() -> None:
    result = parse(MSH_ORU, PID, "OBR|1|P|F|X|||20240301", "OBX|1|NM|X||1||||||F|||garbage").orders[0].results[0]
    assert (result.observed_at, result.invalid_fields) == (None, ("OBX-14",))


@pytest.mark.parametrize(
    ("obr7", "obx14", "text"),
    [
        ("20240301", "202403011015", "202403011015"),  # OBX-14 as sent, not OBR-7
        ("20240301", "", "20240301"),  # OBR-7 stands in, with its own precision
        ("202403010800-0500", " 20240302 ", "20240302"),
        ("", "", None),
        ("20240301", "garbage", None),  # unreadable: no time, no text
        ("garbage", "", None),
    ],
)
def test_result_time_keeps_the_text_it_was_read_from(obr7: str, obx14: str, text: str | None) -> None:
    result = parse(MSH_ORU, PID, f"OBR|1|P|F|X|||{obr7}", f"OBX|1|NM|X||1||||||F|||{obx14}").orders[0].results[0]
    assert result.observed_text == text
    assert (result.observed_at is None) == (text is None)


@pytest.mark.parametrize(
    ("segments", "priority"),
    [
        (("OBR|1|P|F|X" + "|" * 23 + "^^^^^S",), "stat"),  # OBR-27.6
        (("ORC|NW|P|||||^^^^^A", "OBR|1|P|F|X"), "asap"),  # ORC-7.6
        (("ORC|NW|P", "TQ1|||||||||R", "OBR|1|P|F|X"), "routine"),  # TQ1-9
        (("ORC|NW|P", "TQ1|||||||||T", "OBR|1|P|F|X"), "T"),  # unknown code: as sent
        (("OBR|1|P|F|X",), None),
    ],
)
def test_priority(segments: tuple[str, ...], priority: str | None) -> None:
    message = parse("MSH|^~\\&|A|F|||20240101||ORM^O01|C|P|2.5", PID, *segments)
    assert message.orders[0].priority == priority


def test_orm_orc_only_orders_and_orc_time() -> None:
    message = parse("MSH|^~\\&|A|F|||20240101||ORM^O01|C|P|2.3", PID, "ORC|CA|P1|||||||20240301101010", "ORC|CA|P2")
    assert [(o.control, o.placer_number) for o in message.orders] == [("CA", "P1"), ("CA", "P2")]
    assert message.orders[0].ordered_at == datetime(2024, 3, 1, 10, 10, 10, tzinfo=UTC)
    assert message.orders[0].code.code is None


def test_oul_r22_orc_after_obr_and_specimen_observations() -> None:
    message = parse(
        "MSH|^~\\&|A|F|||20240101||OUL^R22|C|P|2.5",
        PID,
        "SPM|1|SP1",
        "OBX|1|NM|TEMP^Specimen temperature||4",  # specimen observation, not a result
        "OBR|1|P1|F1|GLU",
        "ORC|SC|P1|F1||CM",
        "OBX|1|NM|GLU||5.5",
        "SPM|2|SP2",
        "OBR|1|P2|F2|NA",
        "OBX|1|NM|NA||140",
    )
    first, second = message.orders
    assert (first.control, first.status, [r.value for r in first.results]) == ("SC", "CM", ["5.5"])
    assert (second.control, second.placer_number, [r.value for r in second.results]) == (None, "P2", ["140"])


def test_oru_specimen_observations_are_results_of_their_order_and_steal_no_note() -> None:
    # ORU_R01 ORDER_OBSERVATION ends with SPECIMEN (SPM, OBX…): those OBX are observations of the
    # order (some senders put the only result there); dropping them lost results.
    message = parse(
        MSH_ORU, PID, "OBR|1|P1|F1|GLU", "OBX|1|NM|GLU||5.5", "SPM|1|SP1", "OBX|1|CWE|QUAL||OK", "NTE|1||spm note"
    )
    assert [(r.value, r.notes) for r in message.orders[0].results] == [("5.5", ()), ("OK", ("spm note",))]


def test_adt_observations_are_not_orders() -> None:
    message = parse(MSH_ADT, PID, "OBX|1|NM|HEIGHT||180|cm")
    assert message.orders == ()


# --- several patients, merge ----------------------------------------------------------------


def test_each_patient_is_its_own_group_with_its_own_orders() -> None:
    message = parse(
        MSH_ORU,
        PID,
        "OBR|1|P1|F1|GLU",
        "OBX|1|NM|GLU||5.5",
        "PID|1||MRN2^^^HOSP^MR||ROE^RICHARD",
        "OBR|1|P2|F2|GLU",
        "OBX|1|NM|GLU||9.9",
    )
    assert [g.patient.identifiers[0].value for g in message.groups if g.patient] == ["MRN1", "MRN2"]
    assert [[(o.placer_number, [r.value for r in o.results]) for o in g.orders] for g in message.groups] == [
        [("P1", ["5.5"])], [("P2", ["9.9"])]]
    assert [g.problem for g in message.groups] == [None, None]
    assert message.patient is message.groups[0].patient and message.orders == message.groups[0].orders


def test_repeated_pid_of_the_same_patient_continues_the_group() -> None:
    message = parse(MSH_ORU, PID, "OBR|1|P1|F1|GLU", "OBX|1|NM|GLU||5.5", PID, "OBR|1|P2|F2|NA", "OBX|1|NM|NA||140")
    assert len(message.groups) == 1
    assert [o.placer_number for o in message.orders] == ["P1", "P2"]


def test_an_invalid_group_keeps_its_reason_and_the_others_stay_usable() -> None:
    message = parse(MSH_ORU, "PID|1||||NO^IDENTIFIER", "OBR|1|P1|F1|GLU", "OBX|1|NM|GLU||5.5",
                    "PID|1||MRN2^^^HOSP^MR||ROE^RICHARD", "OBR|1|P2|F2|GLU", "OBX|1|NM|GLU||9.9")
    assert [g.problem for g in message.groups] == ["missing_field:PID-3", None]
    assert [o.placer_number for o in message.groups[1].orders] == ["P2"]


def test_every_group_invalid_names_the_first() -> None:
    assert reason(MSH_ORU, "PID|1||||NO^IDENTIFIER", "OBR|1|P1|F1|GLU", "PID|1||MRN2^^^HOSP^MR||ROE^R") == (
        "group1:missing_field:PID-3")


def test_merge() -> None:
    message = parse(
        "MSH|^~\\&|A|FAC|||20240101||ADT^A40^ADT_A39|C|P|2.5",
        "EVN|A40",
        PID,
        "MRG|OLD1^^^HOSP^MR~OLD2",
    )
    assert message.merge is not None
    assert [(i.value, i.system, i.type) for i in message.merge.prior_identifiers] == [
        ("OLD1", "HOSP", "MR"),
        ("OLD2", "FAC", None),
    ]


# --- errors are safe to log ----------------------------------------------------------------


@pytest.mark.parametrize(
    "segments",
    [
        ("MSH|^~\\&|A|SECRETFAC|||20240101||ADT^A08||P|2.5", "PID|1||SECRET123||SECRETNAME"),
        ("MSH|^~\\&|A|F|||20240101||ADT^A08|SECRETCTRL|P|2.5", "PID|1||||SECRETNAME^SECRETGIVEN||19800101"),
        ("MSH|^~\\&|A|F|||20240101||ORU^R01|SECRETCTRL|P|2.5", "PID|1||SECRET123||SECRETNAME", "OBX|1|TX|X||SECRET"),
        ("SECRET|data",),
    ],
)
def test_error_text_holds_no_message_content(segments: tuple[str, ...]) -> None:
    with pytest.raises(HL7Error) as caught:
        parse(*segments)
    for text in (str(caught.value), repr(caught.value), caught.value.reason, str(caught.value.args)):
        assert "SECRET" not in text


# --- Z-segments, truncation, immutability -------------------------------------------------


def test_z_segments_are_listed_but_do_not_disturb_grouping() -> None:
    message = parse(
        MSH_ORU,
        "ZMS|header|extension",
        PID,
        "ZPD|1|VIP^^^X",
        "OBR|1|P1|F1|GLU",
        "OBX|1|NM|GLU||5.5",
        "ZBX|1|instrument^7",
        "NTE|1||after a Z-segment",
    )
    assert message.segment_ids == ("MSH", "ZMS", "PID", "ZPD", "OBR", "OBX", "ZBX", "NTE")
    assert message.patient is not None and [i.value for i in message.patient.identifiers] == ["MRN1"]
    assert message.orders[0].results[0].notes == ("after a Z-segment",)


@pytest.mark.parametrize("cut", ["OBX|1|NM|GLU^Gluc", "OBX|1|NM|GLU||5.", "OBX|1", "OBX", "OB"])
def test_truncated_last_segment(cut: str) -> None:
    message = parse(MSH_ORU, PID, "OBR|1|P1|F1|GLU^Glucose^LN", cut)
    assert message.orders[0].code.display == "Glucose"
    assert len(message.orders[0].results) == (1 if cut.startswith("OBX") else 0)


def test_model_is_frozen() -> None:
    message = parse(MSH_ADT, PID)
    with pytest.raises(AttributeError):
        message.header.control_id = "other"  # type: ignore[misc]
    assert message.patient is not None
    with pytest.raises(AttributeError):
        message.patient.identifiers[0].value = "other"  # type: ignore[misc]


# --- timestamps without a UTC form; NUL ---------------------------------------------------------

LATE, EARLY = "99991231235959-1400", "00010101000000+1400"


def _oru_with(msh7: str = "20240301101500", orc9: str = "", obr7: str = "", obx14: str = "") -> tuple[str, ...]:
    return (f"MSH|^~\\&|LABAPP|LABFAC|LIS|HOSP|{msh7}||ORU^R01|CTRL1|P|2.5.1", PID, f"ORC|RE|P1|F1||||||{orc9}",
            f"OBR|1|P1|F1|X|||{obr7}", f"OBX|1|NM|X||1||||||F|||{obx14}")


@pytest.mark.parametrize("value", [LATE, EARLY, "99991231235959.9999-2359"])
@pytest.mark.parametrize(("field", "segments"), [
    ("MSH-7", lambda v: _oru_with(msh7=v)),
    ("OBR-7", lambda v: _oru_with(obr7=v)),
    ("ORC-9", lambda v: _oru_with(orc9=v)),  # read because OBR-7 is empty
    ("OBX-14", lambda v: _oru_with(obx14=v)),
])
def test_a_timestamp_without_a_utc_form_refuses_the_message_naming_the_field(field, segments, value) -> None:
    assert reason(*segments(value)) == f"out_of_range:{field}"


def test_timestamps_at_the_edges_with_a_utc_form_are_kept() -> None:
    message = parse(*_oru_with(msh7="99991231235959+1400", obr7="00010101000000-1400", obx14="99991231"))
    assert message.header.message_datetime.astimezone(UTC) == datetime(9999, 12, 31, 9, 59, 59, tzinfo=UTC)
    assert message.orders[0].ordered_at.astimezone(UTC) == datetime(1, 1, 1, 14, 0, tzinfo=UTC)
    assert message.orders[0].results[0].observed_at == datetime(9999, 12, 31, tzinfo=UTC)


def test_orc9_is_not_read_when_obr7_gives_the_time() -> None:
    message = parse(*_oru_with(obr7="20240301080000", orc9=LATE))
    assert message.orders[0].ordered_at == datetime(2024, 3, 1, 8, 0, tzinfo=UTC)


def test_nul_is_dropped_and_the_fields_that_held_it_are_named() -> None:
    raw = build(MSH_ORU.replace("CTRL1", "CT\x00RL1"), "PID|1||MRN1^^^HOSP^MR||Nul\x00pat^Al||19800202|F",
                "OBR|1|P1|F1|X", "OBX|1|NM|X||4\x00.2|u|||||F\x00", "  continued\x00 text", "P\x00ID|2")
    message = parse_message(raw)
    assert (message.header.control_id, message.patient.name.family) == ("CTRL1", "Nulpat")
    assert message.orders[0].results[0].value == "4.2"
    assert message.nul_fields == ("MSH-10", "PID-5", "OBX-5", "OBX-11", "PID")


def test_no_nul_no_nul_fields() -> None:
    assert parse(*_oru_with()).nul_fields == ()
