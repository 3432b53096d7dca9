"""A stored LIS message made readable: one segment per line, every separator marked.

HL7 v2 is hard to read raw: segments end in carriage returns (a browser shows one long line) and
fields, components, repetitions and subcomponents run together. Each line here is a list of tokens
the template wraps in ``<span>``s: the segment name, each field's text (titled with its position,
``PID-3``) and each separator with its role, so a stylesheet can make them stand out. Control
characters (MLLP framing, stray NULs) are shown as their Unicode pictures, never passed through.
A JSON LIS event is pretty-printed instead.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from shared.hl7.charset import declared_charset, decode
from shared.hl7.delimiters import Delimiters, read_delimiters
from shared.hl7.errors import HL7Error

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_SEGMENT = re.compile(r"^[A-Z][A-Z0-9]{2}")
_FRAMING = "\x0b\x1c"  # MLLP start and end blocks
_HEADERS = ("MSH", "FHS", "BHS")  # their first field is the separator itself (MSH-1)


@dataclass(frozen=True)
class Token:
    kind: str  # segment | text | field-sep | component-sep | repetition-sep | subcomponent-sep | control
    text: str
    title: str | None = None


def _visible(text: str) -> str:
    """Control characters as their Unicode control pictures (U+2400…), so nothing invisible or raw is
    written into the page."""
    return "".join(chr(0x2400 + ord(c)) if ord(c) < 0x20 else ("\u2421" if c == "\x7f" else c) for c in text)


def _delimiters(lines: list[str]) -> Delimiters:
    for line in lines:
        if line.startswith(_HEADERS):
            try:
                return read_delimiters(line)
            except HL7Error:
                break
    return Delimiters("|", "^", "~", "\\", "&", None)


def _field_tokens(value: str, d: Delimiters, title: str) -> list[Token]:
    """A field split on its repetition, component and subcomponent separators."""
    roles = [(d.repetition, "repetition-sep"), (d.component, "component-sep"), (d.subcomponent, "subcomponent-sep")]
    seps = {char: kind for char, kind in roles if char}
    tokens: list[Token] = []
    run = ""
    for char in value:
        if char in seps:
            if run:
                tokens.append(Token("text", _visible(run), title))
                run = ""
            tokens.append(Token(seps[char], char))
        else:
            run += char
    if run:
        tokens.append(Token("text", _visible(run), title))
    return tokens


def _segment_line(line: str, d: Delimiters) -> list[Token]:
    if not _SEGMENT.match(line) or (len(line) > 3 and line[3] != d.field):
        return [Token("text", _visible(line))]
    name = line[:3]
    tokens = [Token("segment", name)]
    fields = line[4:].split(d.field) if len(line) > 3 else []
    offset = 1
    if name in _HEADERS and fields:
        # MSH-1 is the separator written after the name; MSH-2 (the encoding characters) is literal.
        tokens.append(Token("field-sep", d.field, f"{name}-1"))
        tokens.append(Token("text", _visible(fields[0]), f"{name}-2"))
        fields, offset = fields[1:], 3
    elif len(line) > 3:
        tokens.append(Token("field-sep", d.field))
    for i, value in enumerate(fields):
        if i or name in _HEADERS:
            tokens.append(Token("field-sep", d.field))
        tokens.extend(_field_tokens(value, d, f"{name}-{i + offset}"))
    return tokens


def hl7_lines(raw: bytes) -> list[list[Token]]:
    text, _codec = decode(raw, declared_charset(raw))
    lines = [line for line in _LINE_BREAK.split(text) if line.strip()]
    d = _delimiters([line.lstrip(_FRAMING) for line in lines])
    out = []
    for line in lines:
        body = line.lstrip(_FRAMING)
        framing = [Token("control", _visible(line[: len(line) - len(body)]))] if body != line else []
        out.append(framing + (_segment_line(body, d) if body else []))
    return out


def json_text(raw: bytes) -> str:
    """A JSON LIS event, indented; bytes that are not JSON are shown decoded as they are."""
    text = raw.decode("utf-8", errors="replace")
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return _visible(text)


def readable(raw: bytes, content_format: str) -> tuple[str, list[list[Token]] | str]:
    """("json", text) for a JSON event, else ("hl7v2", lines of tokens)."""
    if content_format == "json":
        return "json", json_text(raw)
    return "hl7v2", hl7_lines(raw)
