"""Character sets: MSH-18 lookup, mislabelled UTF-8, Latin-1/Windows-1252 bytes, fallbacks."""

from __future__ import annotations

import pytest

from shared.hl7 import parse_message
from shared.hl7.charset import codec_for, declared_charset, decode


def adt(family: bytes, charset: bytes = b"") -> bytes:
    return b"\r".join(
        [
            b"MSH|^~\\&|A|F|||20240101||ADT^A08|C1|P|2.5||||||" + charset,
            b"PID|1||1^^^H||" + family + b"^ANNA",
        ]
    )


def family(raw: bytes) -> str | None:
    patient = parse_message(raw).patient
    assert patient is not None and patient.name is not None
    return patient.name.family


@pytest.mark.parametrize(
    ("label", "codec"),
    [
        ("UNICODE UTF-8", "utf-8"),
        ("unicode  utf-8", "utf-8"),
        ("UTF-8", "utf-8"),
        ("8859/1", "cp1252"),
        ("ISO-8859-1", "cp1252"),
        ("8859/2", "iso8859-2"),
        ("8859/15", "iso8859-15"),
        ("ASCII", "ascii"),
        ("ISO IR87", "iso2022_jp"),
        ("GB 18030-2000", "gb18030"),
        ("BIG-5", "big5"),
        ("rot13", None),  # a codec, but not a character set
        ("base64", None),
        ("undefined", None),  # decoding with it raises UnicodeError
        ("unicode_escape", None),  # would rewrite backslashes
        ("idna", None),
        ("utf-7", None),  # reads "+" as a shift
        ("cp037", None),  # EBCDIC: delimiters would not survive
        ("UNICODE UTF-16", None),  # wide input is re-encoded before decoding
        ("x\x00y", None),
        ("NOT A CHARSET", None),
        ("", None),
        (None, None),
    ],
)
def test_codec_for(label: str | None, codec: str | None) -> None:
    assert codec_for(label) == codec


def test_declared_charset_is_read_from_bytes() -> None:
    assert declared_charset(adt(b"X", b"8859/1~UNICODE UTF-8")) == "8859/1"
    assert declared_charset(adt(b"X")) is None
    assert declared_charset(b"MSH") is None


def test_latin1_bytes_with_msh18_8859_1() -> None:
    raw = adt("MÜLLER".encode("latin-1"), b"8859/1")
    assert family(raw) == "MÜLLER"
    assert parse_message(raw).header.charset == "8859/1"


def test_windows_1252_bytes_under_8859_1_label() -> None:
    assert family(adt("O’NEIL–SMITH".encode("cp1252"), b"8859/1")) == "O’NEIL–SMITH"


def test_utf8_mislabelled_as_8859_1_is_read_as_utf8() -> None:
    assert family(adt("MÜLLER".encode(), b"8859/1")) == "MÜLLER"


def test_undeclared_non_utf8_bytes_fall_back_without_failing() -> None:
    assert family(adt("MÜLLER".encode("latin-1"))) == "MÜLLER"


def test_ascii_declared_but_high_bytes_sent() -> None:
    assert family(adt("MÜLLER".encode("latin-1"), b"ASCII")) == "MÜLLER"


def test_declared_8859_2() -> None:
    assert family(adt("ŁÓDŹ".encode("iso8859-2"), b"8859/2")) == "ŁÓDŹ"


def test_seven_bit_iso_2022_is_decoded_with_the_declared_charset() -> None:
    assert family(adt("山田".encode("iso2022_jp"), b"ISO IR87")) == "山田"


def test_hex_escape_uses_the_declared_charset_when_utf8_fails() -> None:
    assert family(adt(b"M\\XDC\\LLER", b"8859/1")) == "MÜLLER"


def test_nul_bytes_are_dropped() -> None:
    text, codec = decode(b"A\x00B", None)
    assert (text, codec) == ("AB", "utf-8")


def test_unknown_label_still_decodes() -> None:
    assert family(adt("MÜLLER".encode(), b"KLINGON")) == "MÜLLER"


@pytest.mark.parametrize("label", [b"undefined", b"unicode_escape", b"idna", b"utf-7", b"cp037", b"x\x00y"])
def test_hostile_labels_fall_back_safely(label: bytes) -> None:
    assert family(adt("MÜLLER\\F\\X".encode("latin-1"), label)) == "MÜLLER|X"
