"""split_messages: MLLP frames, byte-order marks, FHS/BHS batches, blank lines, orphans."""

from __future__ import annotations

import pytest

from shared.hl7 import HL7Error, parse_message, split_messages

SB, EB = b"\x0b", b"\x1c\x0d"


def adt(control_id: str, sep: bytes = b"\r") -> bytes:
    return sep.join(
        [
            b"MSH|^~\\&|APP|FAC|LIS|LAB|20240101120000||ADT^A08|" + control_id.encode() + b"|P|2.5",
            b"PID|1||" + control_id.encode() + b"^^^HOSP^MR||DOE^JANE",
        ]
    )


def controls(raw: bytes) -> list[str | None]:
    return [parse_message(message).header.control_id for message in split_messages(raw)]


def test_plain_message_is_returned_byte_exact() -> None:
    raw = adt("1") + b"\r"
    assert split_messages(raw) == [adt("1")]


def test_utf8_bom_is_dropped() -> None:
    assert split_messages(b"\xef\xbb\xbf" + adt("1")) == [adt("1")]


def test_bom_before_each_concatenated_message() -> None:
    raw = b"\xef\xbb\xbf" + adt("1") + b"\r\n\xef\xbb\xbf" + adt("2")
    assert controls(raw) == ["1", "2"]


def test_mllp_frame() -> None:
    assert split_messages(SB + adt("1") + b"\r" + EB) == [adt("1")]


def test_several_mllp_frames() -> None:
    raw = SB + adt("1") + EB + SB + adt("2") + b"\r" + EB + b"\r\n" + SB + adt("3") + EB
    assert controls(raw) == ["1", "2", "3"]


def test_partial_framing_start_block_only() -> None:
    assert controls(SB + adt("1")) == ["1"]


def test_message_never_spans_frames() -> None:
    # The second frame holds segments but no MSH: it must not be glued onto the first message.
    raw = SB + adt("1") + EB + SB + b"OBX|1|NM|X||1" + EB
    with pytest.raises(HL7Error) as caught:
        split_messages(raw)
    assert caught.value.reason == "no_msh"


def test_concatenated_messages_without_framing() -> None:
    raw = adt("1", b"\n") + b"\n\n" + adt("2", b"\n") + b"\n"
    assert controls(raw) == ["1", "2"]


def test_batch_with_bhs_bts() -> None:
    raw = b"\r".join([b"BHS|^~\\&|APP|FAC", adt("1"), adt("2"), b"BTS|2", b""])
    assert controls(raw) == ["1", "2"]


def test_file_with_two_batches() -> None:
    raw = b"\r".join(
        [
            b"FHS|^~\\&|APP",
            b"BHS|^~\\&|APP",
            adt("1"),
            b"BTS|1",
            b"BHS|^~\\&|APP",
            adt("2"),
            adt("3"),
            b"BTS|2",
            b"FTS|2",
        ]
    )
    assert controls(raw) == ["1", "2", "3"]


def test_batch_trailer_ends_the_message() -> None:
    raw = b"\r".join([b"BHS|^~\\&", adt("1"), b"BTS|1"])
    assert split_messages(raw) == [adt("1")]


def test_batch_without_msh_is_refused() -> None:
    raw = b"\r".join([b"BHS|^~\\&|APP", b"PID|1||X", b"BTS|1"])
    with pytest.raises(HL7Error) as caught:
        split_messages(raw)
    assert caught.value.reason == "no_msh"


def test_segments_before_the_first_msh_are_refused_not_dropped() -> None:
    with pytest.raises(HL7Error) as caught:
        split_messages(b"PID|1||X\r" + adt("1"))
    assert caught.value.reason == "no_msh"


def test_blank_whitespace_and_control_only_lines_are_ignored() -> None:
    raw = b"\r\n  \r\n" + adt("1", b"\r\n") + b"\r\n \t\r\n\x1a"
    assert split_messages(raw) == [adt("1", b"\r\n")]


def test_blank_lines_inside_a_message_stay_in_the_slice() -> None:
    raw = adt("1").replace(b"\rPID", b"\r\n\r\nPID")
    assert split_messages(raw) == [raw]
    assert parse_message(raw).segment_ids == ("MSH", "PID")


@pytest.mark.parametrize("raw", [b"", b"   \r\n\r\n", b"\x0b\x1c\r"])
def test_nothing_but_whitespace_or_framing(raw: bytes) -> None:
    assert split_messages(raw) == []
    with pytest.raises(HL7Error) as caught:
        parse_message(raw)
    assert caught.value.reason == "no_msh"


def test_garbage_is_no_msh() -> None:
    with pytest.raises(HL7Error) as caught:
        parse_message(b"hello world")
    assert caught.value.reason == "no_msh"


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-le", "utf-16-be", "utf-32"])
def test_wide_unicode_input_is_transcoded(codec: str) -> None:
    raw = adt("1").replace(b"DOE", "DÖE".encode()).decode("utf-8").encode(codec)
    message = parse_message(raw)
    assert message.patient is not None and message.patient.name is not None
    assert message.patient.name.family == "DÖE"
