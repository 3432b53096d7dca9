"""Unwrapping a byte stream into messages: MLLP frames, byte-order marks, FHS/BHS batches.

Works on bytes, before any decoding, because each message may declare its own character set.
All delimiters involved (MLLP control bytes, CR, LF, segment ids) are ASCII, which every
ASCII-compatible encoding keeps as is; UTF-16/32 input is the exception and is re-encoded to
UTF-8 first (recognised by its byte-order mark or by "MSH" spelled with NUL bytes).

A message is the bytes from its MSH line to the end of its last segment line, sliced from the
input unchanged (segment separators, blank lines in between) so it can be stored as received.
It ends at the next MSH, at a batch or file header/trailer (FHS, BHS, BTS, FTS) and at an MLLP
frame boundary (0x0B or 0x1C): a message never spans two frames.

Anything else outside a message (segments before the first MSH, a batch holding no MSH, text
between a batch trailer and the next header) makes the whole input fail with 'no_msh' rather
than being dropped: silently discarding segments could lose lab data.
"""

from __future__ import annotations

import hashlib
import re

from .errors import HL7Error

__all__ = ["content_digest", "split_messages"]

_FRAME = re.compile(rb"[\x0b\x1c]")
_LINE = re.compile(rb"[^\r\n]+")
_LEAD = re.compile(rb"(?:[\x00-\x20\x7f]|\xef\xbb\xbf)*")
_BREAK = re.compile(rb"\r\n|\r|\n")
_EDGE = bytes(range(0x21)) + b"\x7f"
_ENVELOPE = frozenset({b"FHS", b"BHS", b"BTS", b"FTS"})
_WIDE = (
    (b"\xff\xfe\x00\x00", "utf-32"),
    (b"\x00\x00\xfe\xff", "utf-32"),
    (b"\xff\xfe", "utf-16"),
    (b"\xfe\xff", "utf-16"),
    (b"M\x00S\x00H\x00", "utf-16-le"),
    (b"\x00M\x00S\x00H", "utf-16-be"),
)


def _narrow(raw: bytes) -> bytes:
    """UTF-16/32 input re-encoded as UTF-8; anything else unchanged."""
    for prefix, codec in _WIDE:
        if raw.startswith(prefix):
            try:
                return raw.decode(codec).encode("utf-8")
            except UnicodeDecodeError:
                return raw
    return raw


def _tag(line: bytes) -> bytes:
    """The segment id of a line when it is followed by a non-alphanumeric (or nothing)."""
    tag = line[:3]
    return tag if len(line) == 3 or not line[3:4].isalnum() else b""


def _split_frame(frame: bytes, out: list[bytes]) -> None:
    start = end = -1
    for line in _LINE.finditer(frame):
        leading = _LEAD.match(line.group())  # always matches, possibly empty
        lead = leading.end() if leading else 0
        content = line.group()[lead:]
        if not content.rstrip(bytes(range(0x21)) + b"\x7f"):
            continue  # blank, whitespace-only or control characters only
        tag = _tag(content)
        if tag == b"MSH":
            if start >= 0:
                out.append(frame[start:end])
            start, end = line.start() + lead, line.end()
        elif tag in _ENVELOPE:
            if start >= 0:
                out.append(frame[start:end])
            start = end = -1
        elif start >= 0:
            end = line.end()
        else:
            raise HL7Error("no_msh")
    if start >= 0:
        out.append(frame[start:end])


def split_messages(raw: bytes) -> list[bytes]:
    """Each message in `raw`, starting with "MSH"; [] when there is nothing but whitespace.

    Raises HL7Error('no_msh') when content lies outside any message (see module docstring).
    """
    out: list[bytes] = []
    for frame in _FRAME.split(_narrow(raw)):
        _split_frame(frame, out)
    return out


def content_digest(raw: bytes, messages: list[bytes] | None = None) -> str:
    """SHA-256 of what `raw` says: its messages with MLLP framing, byte-order marks and batch
    envelopes removed, segment terminators (CR, LF, CRLF) made CR, blank lines dropped and each
    line stripped of the whitespace and control characters the parser ignores. The same message
    sent framed or not, with LF or CRLF, has one digest; a different message has another.
    `messages`: ``split_messages(raw)``, when the caller has it already (not split again)."""
    if messages is None:
        try:
            messages = split_messages(raw)
        except HL7Error:
            messages = []
    messages = messages or [raw]
    digest = hashlib.sha256()
    for message in messages:
        for line in _BREAK.split(_narrow(message)):
            line = line.strip(_EDGE)
            if line.startswith(b"\xef\xbb\xbf"):
                line = line[3:].strip(_EDGE)
            if line:
                digest.update(line + b"\r")
        digest.update(b"\x1c")  # message boundary
    return digest.hexdigest()
