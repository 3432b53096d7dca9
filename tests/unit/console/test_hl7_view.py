from shared.console.hl7_view import Token, hl7_lines, json_text, readable


def _kinds(line: list[Token]) -> list[tuple[str, str, str | None]]:
    return [(t.kind, t.text, t.title) for t in line]


def test_each_segment_is_a_line_with_fields_components_and_repetitions_marked():
    raw = b"MSH|^~\\&|LIS|LAB|||20260101||ORU^R01|7|P|2.5.1\rPID|1||12^^^LAB^MR~34\r\rOBX|1|NM|G&x||5\n"
    msh, pid, obx = hl7_lines(raw)
    assert _kinds(msh)[:5] == [("segment", "MSH", None), ("field-sep", "|", "MSH-1"), ("text", "^~\\&", "MSH-2"),
                               ("field-sep", "|", None), ("text", "LIS", "MSH-3")]
    assert ("text", "ORU", "MSH-9") in _kinds(msh) and ("text", "7", "MSH-10") in _kinds(msh)
    assert _kinds(pid) == [("segment", "PID", None), ("field-sep", "|", None), ("text", "1", "PID-1"),
                           ("field-sep", "|", None), ("field-sep", "|", None), ("text", "12", "PID-3"),
                           ("component-sep", "^", None), ("component-sep", "^", None), ("component-sep", "^", None),
                           ("text", "LAB", "PID-3"), ("component-sep", "^", None), ("text", "MR", "PID-3"),
                           ("repetition-sep", "~", None), ("text", "34", "PID-3")]
    assert ("subcomponent-sep", "&", None) in _kinds(obx) and ("text", "5", "OBX-5") in _kinds(obx)
    assert "".join(t.text for t in pid) == "PID|1||12^^^LAB^MR~34"


def test_declared_delimiters_are_used_and_control_characters_are_made_visible():
    raw = b"\x0bMSH#$%\\*#LIS#LAB\rPID#1##A$B%C\x07\r\x1c\r"
    msh, pid = hl7_lines(raw)
    assert _kinds(msh)[0] == ("control", "\u240b", None) and ("field-sep", "#", "MSH-1") in _kinds(msh)
    assert _kinds(pid)[-6:] == [("field-sep", "#", None), ("text", "A", "PID-3"), ("component-sep", "$", None),
                                ("text", "B", "PID-3"), ("repetition-sep", "%", None), ("text", "C\u2407", "PID-3")]


def test_lines_that_are_not_segments_are_shown_as_text():
    [line] = hl7_lines(b"this is not hl7")
    assert _kinds(line) == [("text", "this is not hl7", None)]


def test_a_json_event_is_indented_and_bad_json_shown_as_it_is():
    assert json_text(b'{"version":"1","event":"result"}') == '{\n  "version": "1",\n  "event": "result"\n}'
    assert json_text(b"{not json\x01") == "{not json\u2401"
    assert readable(b'{"a":1}', "json") == ("json", '{\n  "a": 1\n}')
    assert readable(b"MSH|^~\\&|X", "hl7v2")[0] == "hl7v2"
