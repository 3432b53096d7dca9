"""From bytes to text: MSH-18 lookup and a decoding chain that never fails.

Senders often declare one character set and send another (an "8859/1" header over UTF-8 text
is the classic), so strict UTF-8 is tried first: non-ASCII bytes that form valid UTF-8 are
almost never anything else. Then the declared set, then Windows-1252, then Latin-1, which
decodes any byte. "8859/1" itself is read as Windows-1252, as web browsers do for "iso-8859-1"
(WHATWG Encoding Standard): the two agree on every printable Latin-1 character, and real
"Latin-1" feeds from Windows hosts carry 0x80-0x9F bytes (en dash, curly quotes) that true
Latin-1 would turn into invisible control characters.
"""

from __future__ import annotations

import codecs

__all__ = ["codec_for", "declared_charset", "decode", "decode_hex"]

# HL7 table 0211 (MSH-18) -> Python codec. Values not listed here are tried as Python codec
# labels ("UTF-8", "ISO-8859-1", "windows-1252" are common non-standard spellings).
_TABLE_0211 = {
    "ASCII": "ascii",
    "ISO IR6": "ascii",
    "8859/1": "cp1252",
    "ISO IR100": "cp1252",
    **{f"8859/{n}": f"iso8859_{n}" for n in range(2, 16) if n != 12},
    "ISO IR14": "shift_jis",
    "ISO IR87": "iso2022_jp",
    "ISO IR159": "iso2022_jp_2",
    "UNICODE": "utf-8",
    "UNICODE UTF-8": "utf-8",
    # "UNICODE UTF-16"/"UTF-32" are left out on purpose: such input is re-encoded to UTF-8 by
    # `framing` before this point, and decoding ASCII-framed bytes as UTF-16 would garble them.
    "GB 18030-2000": "gb18030",
    "KS X 1001": "euc_kr",
    "BIG-5": "big5",
}


# Canonical Python codec names (prefixes) that are character sets. Anything else that
# codecs.lookup accepts is a transformation, and some of them raise or rewrite backslashes.
# A usable one must also read printable ASCII, CR and LF as themselves: all delimiters are there.
_PROBE = bytes(range(0x20, 0x7F)) + b"\r\n"
_PROBE_TEXT = _PROBE.decode("ascii")
_CHARACTER_SETS = (
    "ascii", "iso8859", "cp", "utf-8", "utf-16", "utf-32", "shift_jis", "euc", "gb", "big5", "iso2022",
    "koi8", "mac-", "hz", "johab", "tis-620", "kz1048", "ptcp154", "hp-roman8",
)  # fmt: skip


def declared_charset(message: bytes) -> str | None:
    """MSH-18 (first repetition, first component) read from the raw bytes of the MSH line.

    It has to be read before decoding, since it says how to decode; table 0211 values are ASCII.
    """
    line = message.split(b"\r", 1)[0].split(b"\n", 1)[0]
    if len(line) < 4:
        return None
    fields = line.split(line[3:4])
    if len(fields) < 18:
        return None
    value = fields[17]
    for separator in set(fields[1][:2]) | {ord("^"), ord("~")}:
        value = value.split(bytes((separator,)), 1)[0]
    return value.decode("ascii", "ignore").strip() or None


def codec_for(label: str | None) -> str | None:
    """Python codec name for an MSH-18 value, or None when unknown or not a text encoding."""
    if not label:
        return None
    key = " ".join(label.upper().split())
    name = _TABLE_0211.get(key, key)
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError):
        return None
    if not info.name.startswith(_CHARACTER_SETS):
        return None  # "rot13", "undefined", "unicode_escape", "idna": codecs, not character sets
    try:
        if _PROBE.decode(info.name) != _PROBE_TEXT:
            return None  # EBCDIC, UTF-16: delimiters would not survive (wide input is narrowed earlier)
    except (ValueError, LookupError):
        return None
    if info.name in ("iso8859-1", "latin-1"):
        return "cp1252"
    return info.name


def _chain(declared: str | None, raw: bytes) -> list[str]:
    chain = ["utf-8", "cp1252", "latin-1"]
    if declared:
        # 7-bit ISO 2022 encodings are valid ASCII, so UTF-8 would "succeed" on them.
        position = 0 if declared.startswith("iso2022") and b"\x1b" in raw else 1
        chain.insert(position, declared)
    return list(dict.fromkeys(chain))


def decode(raw: bytes, declared: str | None) -> tuple[str, str]:
    """Decode a whole message; returns (text, codec used). NUL characters are dropped.

    NUL is never meaningful in HL7 text and PostgreSQL rejects it in text columns, where it
    would turn one bad byte into an endless retry.
    """
    for name in _chain(declared, raw):
        try:
            text = raw.decode(name)
        except (ValueError, LookupError):  # UnicodeError is a ValueError
            continue
        return text.replace("\x00", ""), name
    raise AssertionError("latin-1 decodes every byte")  # pragma: no cover


def decode_hex(data: bytes, codecs_to_try: tuple[str, ...]) -> str:
    """Decode the bytes of an \\Xhh..\\ escape: message codec first, Latin-1 last."""
    for name in codecs_to_try:
        try:
            return data.decode(name).replace("\x00", "")
        except (ValueError, LookupError):
            continue
    return data.decode("latin-1").replace("\x00", "")
