"""Payload -> parts: format sniffing, batches, quarantine reasons, the JSON LIS event."""

import json

from shared.lis.content import peek, read_parts, sniff

ADT = b"MSH|^~\\&|LAB|FAC|||20260101000000||ADT^A08|C1|P|2.5\rPID|1||X1^^^FAC||DOE^JANE\r"
EVENT = {
    "version": "1", "event": "result", "message_id": "J-1", "sending_facility": "LABJ",
    "sent_at": "2026-01-01T10:00:00+01:00",
    "patient": {"identifiers": [{"value": "P-1"}], "name": {"family": "Doe", "given": ["Jane"]}, "sex": "female"},
    "orders": [{"placer_number": "O-1", "code": {"code": "2823-3", "display": "Potassium", "system": "LN"},
                "results": [{"code": {"code": "2823-3", "system": "LN"}, "value_type": "NM", "values": ["4.2"],
                             "units": "mmol/L", "status": "F"}]}],
}


def test_sniff():
    assert sniff(b'\xef\xbb\xbf  {"a": 1}') == "json"
    assert sniff(b"\x0bMSH|^~\\&|") == "hl7v2"
    assert sniff(b"garbage") == "hl7v2"


def test_a_batch_becomes_one_part_per_message():
    second = ADT.replace(b"|C1|", b"|C2|")
    parts = read_parts(b"BHS|^~\\&|LAB\r" + ADT + second + b"BTS|2\r", None)
    assert [p.message.header.control_id for p in parts] == ["C1", "C2"]
    assert all(p.content_format == "hl7v2" and p.quarantine is None for p in parts)


def test_unparseable_content_is_quarantined_with_a_reason_and_a_peek():
    [part] = read_parts(b"MSH|^~\\&|APP|FAC|||20260101||ORU^R01|CTRL-9|P|2.5\rPID|1||X\r", None)
    assert part.quarantine == "missing_segment:OBR"
    assert (part.peek.message_type, part.peek.control_id, part.peek.sending_facility) == ("ORU^R01", "CTRL-9", "FAC")
    [nothing] = read_parts(b"hello", None)
    assert nothing.quarantine == "no_msh" and nothing.raw == b"hello"


def test_peek_never_raises():
    for raw in (b"", b"MSH", b"MSH|", b"\xff\xfe", b"MSH|^~\\&|" * 3):
        peek(raw)


def test_json_event_becomes_the_neutral_model():
    [part] = read_parts(json.dumps(EVENT).encode(), None)
    m = part.message
    assert part.content_format == "json" and part.quarantine is None
    assert (m.header.message_type, m.header.trigger_event, m.header.control_id) == ("ORU", "R01", "J-1")
    assert m.header.message_datetime.utcoffset().total_seconds() == 3600
    assert [(i.value, i.system) for i in m.patient.identifiers] == [("P-1", "LABJ")]  # default system: the facility
    [order] = m.orders
    assert order.placer_number == "O-1" and order.results[0].value == "4.2" and order.results[0].status == "F"


def test_invalid_json_events_are_quarantined_naming_fields_not_values():
    [bad] = read_parts(b'{"version": "1", "event": "result", "message_id": "SECRET-NAME"', "json")
    assert bad.quarantine == "invalid_json"
    wrong = {**EVENT, "patient": {"identifiers": []}, "orders": []}
    [part] = read_parts(json.dumps(wrong).encode(), "json")
    assert part.quarantine == "invalid_json_event"
    assert "invalid:patient.identifiers" in part.warnings
    assert not any("SECRET" in w for w in part.warnings)
    naive = {**EVENT, "sent_at": "2026-01-01T10:00:00"}
    assert read_parts(json.dumps(naive).encode(), "json")[0].quarantine == "invalid_json_event"
    assert read_parts(b'{"a": NaN}', "json")[0].quarantine == "invalid_json"


def test_json_event_shape_rules():
    patient_with_orders = {**EVENT, "event": "patient"}
    assert read_parts(json.dumps(patient_with_orders).encode(), "json")[0].quarantine == "invalid_json_event"
    no_number = {**EVENT, "orders": [{**EVENT["orders"][0], "placer_number": None}]}
    assert read_parts(json.dumps(no_number).encode(), "json")[0].quarantine == "invalid_json_event"
    no_results = {**EVENT, "orders": [{"placer_number": "O-1"}]}
    assert read_parts(json.dumps(no_results).encode(), "json")[0].quarantine == "invalid_json_event"
    order_event = {**EVENT, "event": "order", "patient": None, "orders": [{"filler_number": "F-1", "control": "CA"}]}
    [part] = read_parts(json.dumps(order_event).encode(), "json")
    assert part.message.header.message_type == "ORM" and part.message.patient is None


def test_an_unknown_key_in_a_json_event_is_not_quoted():
    event = {**EVENT, "patient": {**EVENT["patient"], "JANE DOE 1980": 1}}
    [part] = read_parts(json.dumps(event).encode(), "json")
    assert part.quarantine == "invalid_json_event"
    assert part.warnings == ("invalid:patient.(unknown field)",)


def _with_result(**changes):
    result = {**EVENT["orders"][0]["results"][0], **changes}
    return {**EVENT, "orders": [{**EVENT["orders"][0], "results": [result]}]}


def test_json_timestamps_without_a_utc_form_are_quarantined_naming_the_field():
    late, early = "9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00"
    cases = {
        "sent_at": {**EVENT, "sent_at": late},
        "orders.0.ordered_at": {**EVENT, "orders": [{**EVENT["orders"][0], "ordered_at": early}]},
        "orders.0.results.0.observed_at": _with_result(observed_at=late),
    }
    for name, event in cases.items():
        [part] = read_parts(json.dumps(event).encode(), "json")
        assert (part.quarantine, part.warnings) == (f"out_of_range:{name}", (f"out_of_range:{name}",)), name
    # The last instants with a UTC form are applied.
    [edge] = read_parts(json.dumps({**EVENT, "sent_at": "9999-12-31T23:59:59+14:00"}).encode(), "json")
    assert edge.quarantine is None and edge.message.header.message_datetime.year == 9999


def test_a_json_event_out_of_range_and_otherwise_invalid_is_invalid_naming_both():
    event = {**_with_result(observed_at="0001-01-01T00:00:00+14:00"), "sent_at": "yesterday"}
    [part] = read_parts(json.dumps(event).encode(), "json")
    assert part.quarantine == "invalid_json_event"
    assert set(part.warnings) == {"out_of_range:orders.0.results.0.observed_at", "invalid:sent_at"}


def test_json_nested_past_the_recursion_limit_is_invalid_json():
    deep = b'{"version": "1", "x": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    [part] = read_parts(deep, None)
    assert (part.quarantine, part.content_format, part.raw) == ("invalid_json", "json", deep)


def test_hl7_fields_that_held_nul_are_named_in_warnings():
    raw = ADT.replace(b"DOE^JANE", b"Nul\x00pat^Al")
    [part] = read_parts(raw, None)
    assert part.message.patient.name.family == "Nulpat" and part.raw == raw
    assert part.warnings == ("nul_removed:PID-5",)


def test_hl7_hex_escapes_of_nul_are_named_in_warnings_like_nul_bytes():
    raw = ADT.replace(b"DOE^JANE", b"Nul\\X00\\pat^Al\\X0041\\")
    [part] = read_parts(raw, None)
    assert (part.message.patient.name.family, part.message.patient.name.given[0]) == ("Nulpat", "AlA")
    assert part.warnings == ("nul_removed:PID-5",)
    [plain] = read_parts(ADT.replace(b"DOE^JANE", b"D\\X41\\E^JANE"), None)  # a hex escape without NUL: no warning
    assert plain.message.patient.name.family == "DAE" and plain.warnings == ()


def test_json_strings_that_held_nul_are_named_in_warnings_like_hl7_fields():
    event = json.loads(json.dumps(EVENT))
    event["patient"]["name"]["family"] = "Do\u0000e"
    event["orders"][0]["results"][0]["values"] = ["4\u0000.2"]
    [part] = read_parts(json.dumps(event).encode(), "json")
    assert part.quarantine is None
    assert part.message.patient.name.family == "Doe"  # removed, as from an HL7 field (not U+FFFD)
    assert part.message.groups[0].orders[0].results[0].values == ("4.2",)
    assert part.warnings == ("nul_removed:patient.name.family", "nul_removed:orders.0.results.0.values.0")
    [clean] = read_parts(json.dumps(EVENT).encode(), "json")
    assert clean.warnings == () and clean.digest != part.digest
