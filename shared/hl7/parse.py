"""Public entry points: bytes in, `Message` out.

The pipeline per message: unwrap (`framing`), read MSH-18 from the raw bytes and decode
(`charset`), tokenize (`segments`, which unescapes through `escape`), map (`mapping`).
"""

from __future__ import annotations

from dataclasses import replace

from .charset import codec_for, declared_charset, decode
from .errors import HL7Error
from .framing import content_digest, split_messages
from .structure import build_message
from .model import Message
from .segments import may_hold_nul, nul_fields, read_segments

__all__ = ["content_digest", "parse_message", "split_messages"]


def parse_message(raw: bytes, messages: list[bytes] | None = None) -> Message:
    """Parse exactly one message (MLLP framing, BOM and a batch envelope are allowed).

    Raises HL7Error when the content can never be processed; 'multiple_messages' when `raw`
    holds more than one message, which must go through `split_messages` instead: taking only
    the first would silently drop the others. `messages`: ``split_messages(raw)``, when the
    caller has it already (not split again).
    """
    messages = split_messages(raw) if messages is None else messages
    if not messages:
        raise HL7Error("no_msh")
    if len(messages) > 1:
        raise HL7Error("multiple_messages")
    return _parse_one(messages[0])


def _parse_one(data: bytes) -> Message:
    declared = codec_for(declared_charset(data))
    text, used = decode(data, declared)
    hex_codecs = tuple(dict.fromkeys(c for c in (used, declared, "utf-8", "cp1252", "latin-1") if c))
    segments = read_segments(text, hex_codecs)
    if any(segment.id == "MSH" for segment in segments[1:]):
        raise HL7Error("multiple_messages")  # only reachable through a literal "\r" break
    message = build_message(segments)
    if may_hold_nul(data):  # decoding dropped NUL (raw or \X00\): say where
        message = replace(message, nul_fields=nul_fields(data))
    return message
