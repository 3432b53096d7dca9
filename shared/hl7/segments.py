"""Tokenizer: decoded message text -> segments, with lazy access to fields and components.

python-hl7 is not used here although it is installed: it splits segments on CR only, its
unescape logs the raw field value (PHI) at WARNING level and raises ValueError on a malformed
``\\.sp\\`` argument, and a lazy split of only the fields the mapping reads is simpler to make
robust (and faster) than adapting its eager tree.

Line handling, each a class of real-world damage:

* CR, LF and CRLF all end a segment, mixed freely; blank and whitespace-only lines vanish;
  whitespace and control characters around a line are dropped.
* A literal backslash-r or backslash-n (two characters, left over from source code) followed by
  a segment id and the field separator is taken as the segment break it was meant to be. Inside
  a field that text can never be a valid escape sequence, so this cannot misread valid data.
* A line that does not start with a segment id continues the previous segment: it is the
  remainder of a value that held a raw line break (common in free-text results), so it is
  joined back with a newline rather than dropped.

Indexing follows the standard: ``segment.field(n)`` is SEG-n, and for MSH, MSH-1 is the field
separator itself. Components and subcomponents are 1-based too.
"""

from __future__ import annotations

import re

from .delimiters import Delimiters, read_delimiters
from .errors import HL7Error
from .escape import unescape

__all__ = ["Rep", "Segment", "may_hold_nul", "nul_fields", "read_segments"]

# A hex escape (\\Xhh..\\) with a 00 byte among its pairs: decoding drops that NUL as it drops a raw one.
_HEX_NUL_HINT = re.compile(rb"X(?:[0-9A-Fa-f]{2})*?00")

_EDGE = "".join(map(chr, range(0x21))) + "\x7f\ufeff"
_SEGMENT_ID = re.compile(r"[A-Z][A-Z0-9]{2}")
_NULL = '""'


class _Values:
    """Delimiters plus how to decode \\X escapes: everything needed to turn raw into text."""

    __slots__ = ("d", "hex_codecs")

    def __init__(self, d: Delimiters, hex_codecs: tuple[str, ...]) -> None:
        self.d = d
        self.hex_codecs = hex_codecs

    def clean(self, raw: str) -> str | None:
        """Unescaped and stripped; None for empty, whitespace-only and HL7 null ``""``."""
        raw = raw.strip()
        if not raw or raw == _NULL:
            return None
        escape = self.d.escape
        if not escape or escape not in raw:  # nothing to decode (most values): stripped already
            return raw
        return unescape(raw, self.d, self.hex_codecs).strip() or None

    def text(self, raw: str) -> str:
        """Unescaped free text: leading spaces kept, trailing removed (HL7 TX/FT rule)."""
        if raw.strip() == _NULL:
            return ""
        return unescape(raw, self.d, self.hex_codecs).rstrip()


class Rep:
    """One repetition of a field."""

    __slots__ = ("_components", "_v", "raw")

    def __init__(self, raw: str, values: _Values) -> None:
        self.raw = raw
        self._v = values
        self._components: list[str] | None = None

    def _component_raw(self, i: int) -> str:
        if self._components is None:
            sep = self._v.d.component
            self._components = self.raw.split(sep) if sep else [self.raw]
        return self._components[i - 1] if 0 < i <= len(self._components) else ""

    def component(self, i: int) -> str | None:
        """Component i as text; subcomponent separators in it are kept literally.

        For components of a simple type (ST, ID, ...) an unescaped ``&`` is data, not structure.
        """
        raw = self._component_raw(i)
        return self._v.clean(raw) if raw else None

    def sub(self, i: int, j: int = 1) -> str | None:
        """Subcomponent j of component i."""
        raw = self._component_raw(i)
        sep = self._v.d.subcomponent
        if sep and sep in raw:
            parts = raw.split(sep)
            raw = parts[j - 1] if 0 < j <= len(parts) else ""
        elif j != 1:
            return None
        return self._v.clean(raw)

    def value(self) -> str | None:
        """The whole repetition as one scalar, component separators kept literally."""
        return self._v.clean(self.raw)

    def text(self) -> str:
        """The whole repetition as free text (see `_Values.text`)."""
        return self._v.text(self.raw)


class Segment:
    """One segment: raw fields split lazily on demand."""

    __slots__ = ("_fields", "_v", "id")

    def __init__(self, fields: list[str], values: _Values) -> None:
        self.id = fields[0]
        self._fields = fields
        self._v = values

    @property
    def delimiters(self) -> Delimiters:
        return self._v.d

    def field(self, n: int) -> str:
        """SEG-n, raw (still escaped); "" when absent."""
        return self._fields[n] if 0 < n < len(self._fields) else ""

    def clean(self, raw: str) -> str | None:
        """Any raw text of this segment as a scalar (unescaped, stripped, None when empty)."""
        return self._v.clean(raw)

    def whole(self, n: int) -> str | None:
        """SEG-n as one scalar, every separator in it kept literally.

        For non-repeating simple fields (MSH-10, OBX-7): an unescaped separator there is data.
        """
        return self._v.clean(self.field(n))

    def reps(self, n: int) -> list[Rep]:
        """Repetitions of SEG-n; [] when the field is empty."""
        raw = self.field(n)
        if not raw:
            return []
        sep = self._v.d.repetition
        parts = raw.split(sep) if sep else [raw]
        return [Rep(part, self._v) for part in parts]

    def first(self, n: int) -> Rep:
        """First repetition of SEG-n (an empty one when the field is empty)."""
        fields = self._fields
        raw = fields[n] if 0 < n < len(fields) else ""
        sep = self._v.d.repetition
        if sep and sep in raw:
            raw = raw.split(sep, 1)[0]
        return Rep(raw, self._v)

    def value(self, n: int, component: int = 1) -> str | None:
        """Component of the first repetition of SEG-n, as text: ``first(n).component(component)``,
        without making the repetition (the mapping reads ~60 such values per ORU)."""
        fields = self._fields
        raw = fields[n] if 0 < n < len(fields) else ""
        if not raw:
            return None
        d = self._v.d
        if d.repetition and d.repetition in raw:
            raw = raw.split(d.repetition, 1)[0]
        if not d.component:
            raw = raw if component == 1 else ""
        elif component == 1:
            raw = raw.split(d.component, 1)[0]
        else:
            parts = raw.split(d.component)
            raw = parts[component - 1] if 0 < component <= len(parts) else ""
        return self._v.clean(raw) if raw else None

    def text_lines(self, n: int) -> list[str]:
        """Every repetition of SEG-n as free text (repetitions of a text field are lines)."""
        return [rep.text() for rep in self.reps(n)]


def _lines(text: str) -> list[str]:
    stripped = (line.strip(_EDGE) for line in text.replace("\r\n", "\r").replace("\n", "\r").split("\r"))
    return [line for line in stripped if line]


def _starts_segment(line: str, field: str) -> bool:
    return _SEGMENT_ID.match(line) is not None and (len(line) == 3 or line[3] == field)


def read_segments(text: str, hex_codecs: tuple[str, ...]) -> list[Segment]:
    """Segments of one decoded message whose first line is MSH.

    Raises HL7Error: 'no_msh' when the text does not start with MSH, 'unparseable' when its
    delimiters are unusable.
    """
    lines = _lines(text)
    if not lines or not lines[0].startswith("MSH"):
        raise HL7Error("no_msh")
    d = read_delimiters(lines[0])
    literal_break = re.compile(r"\\[rn](?=[A-Z][A-Z0-9]{2}" + re.escape(d.field) + ")")
    pieces: list[list[str]] = []  # each segment's line plus its continuation lines
    for line in lines:
        parts = literal_break.split(line) if ("\\r" in line or "\\n" in line) else (line,)
        for part in parts:
            if not pieces or _starts_segment(part, d.field):
                pieces.append([part])
            else:
                pieces[-1].append(part)
    values = _Values(d, hex_codecs)
    segments = []
    for piece in pieces:
        fields = "\n".join(piece).split(d.field)
        if fields[0] == "MSH":
            fields.insert(1, d.field)
        segments.append(Segment(fields, values))
    return segments


_EDGE_BYTES = bytes(range(1, 0x21)) + b"\x7f"
_LINE_BREAK = re.compile(rb"\r\n|\r|\n")


def may_hold_nul(data: bytes) -> bool:
    """A cheap test before `nul_fields`: a NUL byte, or what may be a hex escape of one."""
    return b"\x00" in data or _HEX_NUL_HINT.search(data) is not None


def _hex_nul(value: bytes, escape: bytes) -> bool:
    """The value holds a hex escape (``\\X..00..\\``) that decodes to a NUL, which decoding drops."""
    if not escape or escape + b"X" not in value:
        return False
    pattern = re.escape(escape) + rb"X((?:[0-9A-Fa-f]{2})+)" + re.escape(escape)
    return any(b"\x00" in bytes.fromhex(m.group(1).decode("ascii")) for m in re.finditer(pattern, value))


def nul_fields(data: bytes) -> tuple[str, ...]:
    """The fields (``SEG-n``, numbered like `Segment.field`) of one message's bytes that hold NUL,
    as a byte or as a hex escape (``\\X00\\``).

    Decoding drops NUL (`charset.decode`, `charset.decode_hex`: never meaningful in HL7, and
    PostgreSQL cannot store it), which would silently change a value; this names where it happened
    so the consumer can say so.
    A NUL inside a segment id names the segment; one in a continuation line, the field it continues.
    Works on the bytes, before decoding: NUL is the byte 0 in every charset the parser reads
    (UTF-16/32 input was re-encoded to UTF-8 by `framing`).
    """
    found: dict[str, None] = {}
    separator: bytes | None = None
    escape = b""
    current: tuple[str, int] | None = None  # (segment id, number of its last field)
    for line in _LINE_BREAK.split(data):
        core = line.strip(_EDGE_BYTES)
        bare = core.replace(b"\x00", b"")
        if separator is None and bare.startswith(b"MSH") and len(bare) > 3:
            separator = bare[3:4]
            escape = bare[6:7] if len(bare) > 6 and bare[6:7] != separator else b""  # MSH-2: ^~\&
        starts = (separator is not None and _SEGMENT_ID.match(bare[:3].decode("latin-1")) is not None
                  and (len(bare) == 3 or bare[3:4] == separator))
        if starts:
            assert separator is not None
            seg_id = bare[:3].decode("latin-1")
            fields = core.split(separator)
            shift = 1 if seg_id == "MSH" else 0  # MSH-1 is the separator itself
            for k, value in enumerate(fields):
                if b"\x00" in value or (k > shift and _hex_nul(value, escape)):
                    found[seg_id if k == 0 else f"{seg_id}-{k + shift}"] = None
            current = (seg_id, len(fields) - 1 + shift)
        elif (b"\x00" in line or _hex_nul(line, escape)) and current is not None:
            found[f"{current[0]}-{current[1]}"] = None
    return tuple(found)
