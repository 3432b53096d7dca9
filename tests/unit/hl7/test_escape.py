"""Escape sequences: delimiters, hex (multi-byte), formatting, highlighting, malformed ones."""

from __future__ import annotations

import pytest

from shared.hl7 import parse_message
from shared.hl7.delimiters import Delimiters
from shared.hl7.escape import unescape

STANDARD = Delimiters("|", "^", "~", "\\", "&", "#")
UTF8 = ("utf-8", "latin-1")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("plain", "plain"),
        ("a\\F\\b", "a|b"),
        ("a\\S\\b", "a^b"),
        ("a\\T\\b", "a&b"),
        ("a\\R\\b", "a~b"),
        ("a\\E\\b", "a\\b"),
        ("a\\P\\b", "a#b"),
        ("Smith\\F\\\\S\\\\R\\\\E\\\\T\\", "Smith|^~\\&"),
        ("line1\\.br\\line2", "line1\nline2"),
        ("a\\.sp\\b", "a\nb"),
        ("a\\.sp2\\b", "a\n\nb"),
        ("a\\.sp 3\\b", "a\n\n\nb"),
        ("a\\.sk2\\b", "a  b"),
        ("a\\.ce\\b", "a\nb"),
        ("a\\.in+4\\b\\.ti-2\\c\\.fi\\\\.nf\\d", "abcd"),
        ("\\H\\bold\\N\\ text", "bold text"),
        ("x\\Zlocal\\y", "xy"),
        ("x\\C2842\\y\\M2442\\z", "xyz"),
        ("crlf\\X0D0A\\end", "crlf\r\nend"),
        ("crlf\\X0D\\\\X0A\\end", "crlf\r\nend"),
        ("caf\\XC3A9\\", "café"),  # multi-byte UTF-8 in one sequence
        ("\\XE282AC\\5", "€5"),
        ("\\XE9\\t\\XE9\\", "été"),  # not valid UTF-8 -> Latin-1
        ("nul\\X00\\gone", "nulgone"),
    ],
)
def test_known_sequences(raw: str, expected: str) -> None:
    assert unescape(raw, STANDARD, UTF8) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("BSV 4\\5 re.", "BSV 4\\5 re."),  # lone escape character
        ("trailing\\", "trailing\\"),
        ("C:\\temp\\file", "C:\\temp\\file"),  # unknown sequence kept literally
        ("C:\\temp\\F\\x", "C:\\temp|x"),  # ...and a real one right after it still decodes
        ("a\\\\b", "a\\\\b"),  # empty sequence
        ("\\X\\", "\\X\\"),  # hex without digits
        ("\\XABC\\", "\\XABC\\"),  # odd number of hex digits
        ("\\XZZ\\", "\\XZZ\\"),
        ("\\.spx\\", "\\.spx\\"),  # non-numeric count (python-hl7 raises here)
        ("\\.br2\\", "\\.br2\\"),
    ],
)
def test_malformed_sequences_are_kept_literally(raw: str, expected: str) -> None:
    assert unescape(raw, STANDARD, UTF8) == expected


def test_repeat_counts_are_capped() -> None:
    assert unescape("\\.sp999999999\\", STANDARD, UTF8) == "\n" * 100


def test_custom_escape_character() -> None:
    custom = Delimiters("!", "$", "r", "?", "@", None)
    assert unescape("a?F?b?S?c", custom, UTF8) == "a!b$c"
    assert unescape("a\\F\\b", custom, UTF8) == "a\\F\\b"


def test_escaped_delimiters_do_not_split_components() -> None:
    raw = b"\r".join(
        [
            b"MSH|^~\\&|A|F|||20240101||ADT^A08|C1|P|2.5",
            b"PID|1||A\\S\\B\\T\\C^^^AUTH\\F\\X^MR||O\\S\\BRIEN&van^JOHN",
        ]
    )
    patient = parse_message(raw).patient
    assert patient is not None and patient.name is not None
    assert [(i.value, i.system) for i in patient.identifiers] == [("A^B&C", "AUTH|X")]
    assert patient.name.family == "O^BRIEN"


def test_escapes_in_results_and_notes() -> None:
    raw = b"\r".join(
        [
            b"MSH|^~\\&|A|F|||20240101||ORU^R01|C1|P|2.5||||||UNICODE UTF-8",
            b"PID|1||1^^^H",
            b"OBR|1|P|F|CODE",
            b"OBX|1|FT|CODE||Line one\\.br\\Line two: \\H\\high\\N\\ caf\\XC3A9\\||||||F",
            b"NTE|1||see \\E\\ note",
        ]
    )
    result = parse_message(raw).orders[0].results[0]
    assert result.value == "Line one\nLine two: high café"
    assert result.notes == ("see \\ note",)
