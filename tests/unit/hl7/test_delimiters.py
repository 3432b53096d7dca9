"""Delimiters from MSH-1/MSH-2: standard, custom, short, repeated, too many, unusable."""

from __future__ import annotations

import pytest

from shared.hl7 import HL7Error, parse_message
from shared.hl7.delimiters import Delimiters, read_delimiters


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("MSH|^~\\&|A", Delimiters("|", "^", "~", "\\", "&", None)),
        ("MSH|^~\\&#|A", Delimiters("|", "^", "~", "\\", "&", "#")),
        ("MSH*^~\\&*A", Delimiters("*", "^", "~", "\\", "&", None)),
        ("MSH|$%\\@|A", Delimiters("|", "$", "%", "\\", "@", None)),
        ("MSH!$r?@!A", Delimiters("!", "$", "r", "?", "@", None)),
        # fewer characters: the missing roles take the standard ones
        ("MSH|^~|A", Delimiters("|", "^", "~", "\\", "&", None)),
        ("MSH||A", Delimiters("|", "^", "~", "\\", "&", None)),
        ("MSH|", Delimiters("|", "^", "~", "\\", "&", None)),
        # a default already used by another role is switched off, not shared
        ("MSH|&|A", Delimiters("|", "&", "~", "\\", None, None)),
        # a doubled backslash from source-code escaping collapses to one
        ("MSH|^~\\\\&|A", Delimiters("|", "^", "~", "\\", "&", None)),
        # repeated characters: first role wins
        ("MSH|^&&^|A", Delimiters("|", "^", "&", "\\", None, None)),
        # more than five: the rest is ignored
        ("MSH|^~\\&#$|A", Delimiters("|", "^", "~", "\\", "&", "#")),
    ],
)
def test_read_delimiters(line: str, expected: Delimiters) -> None:
    assert read_delimiters(line) == expected


@pytest.mark.parametrize("line", ["MSH", "MSHA^~\\&", "MSH ^~\\&", "MSH\t^~"])
def test_unusable_field_separator(line: str) -> None:
    with pytest.raises(HL7Error) as caught:
        read_delimiters(line)
    assert caught.value.reason == "unparseable"


def test_bare_msh_is_unparseable() -> None:
    with pytest.raises(HL7Error) as caught:
        parse_message(b"MSH\rPID|1||X")
    assert caught.value.reason == "unparseable"


def test_star_and_custom_encoding_characters_parse_a_whole_message() -> None:
    raw = b"\r".join(
        [
            b"MSH*%$\\@*APP*FAC*LIS*LAB*20240101**ORU%R01*C1*P*2.5",
            b"PID*1**ID1%%%AUTH@OID%MR$ID2%%%OTHER**ROE%ANN",
            b"OBR*1*PL1*FI1*GLU%Glucose%LN",
            b"OBX*1*NM*GLU%Glucose%LN**5.5*mmol/L",
        ]
    )
    message = parse_message(raw)
    assert message.header.message_type == "ORU" and message.header.trigger_event == "R01"
    assert message.patient is not None
    assert [(i.value, i.system, i.type) for i in message.patient.identifiers] == [
        ("ID1", "AUTH", "MR"),
        ("ID2", "OTHER", None),
    ]
    assert message.orders[0].code.display == "Glucose"
    assert message.orders[0].results[0].value == "5.5"


def test_msh9_written_with_caret_under_custom_component_separator() -> None:
    message = parse_message(b"MSH|$~\\&|A|F|||20240101||ACK^R01^ACK|C1|P|2.5")
    assert (message.header.message_type, message.header.trigger_event, message.header.structure) == (
        "ACK",
        "R01",
        "ACK",
    )


def test_msh9_glued_with_underscore() -> None:
    message = parse_message(b"MSH|^~\\&|A|F|||20240101||ack_a01|C1|P|2.5")
    assert (message.header.message_type, message.header.trigger_event) == ("ACK", "A01")
