"""HL7 v2 escape sequences (v2.5 chapter 2.7), decoded in one pass without ever failing.

Decoded: ``\\F\\ \\S\\ \\T\\ \\R\\ \\E\\ \\P\\`` (delimiters), ``\\Xhh..\\`` (bytes in the message's
character set, Latin-1 as the last resort), ``\\.br\\`` and ``\\.sp n\\`` / ``\\.ce\\`` (line
breaks), ``\\.sk n\\`` (spaces). Dropped: highlighting ``\\H\\ \\N\\``, locally defined ``\\Z..\\``,
character-set switches ``\\C..\\ \\M..\\`` and the formatting-only ``\\.in \\.ti \\.fi \\.nf``.

Anything else is kept literally: an escape character with no closing partner (``BSV 4\\5``), or
a pair around something that is not a known sequence (``C:\\temp\\``, a path sent unescaped).
In the second case only the opening character is taken literally and the scan goes on from the
next character, so a real sequence right after a stray escape character is still decoded.
"""

from __future__ import annotations

import re

from .charset import decode_hex
from .delimiters import Delimiters

__all__ = ["unescape"]

_MAX_REPEAT = 100  # \.sp 1000000000\ must not allocate a gigabyte
_HEX = re.compile(r"(?:[0-9A-Fa-f]{2})+", re.ASCII)
_COUNT = re.compile(r"[+-]?[0-9]{1,9}", re.ASCII)
_DROPPED = frozenset({"H", "N", ".fi", ".nf"})


def _count(argument: str) -> int | None:
    """The n of \\.sp n\\ (1 when absent); None when it is not a number."""
    argument = argument.strip()
    if not argument:
        return 1
    if not _COUNT.fullmatch(argument):
        return None
    return max(0, min(int(argument), _MAX_REPEAT))


def _sequence(body: str, d: Delimiters, hex_codecs: tuple[str, ...]) -> str | None:
    """Replacement text for the inside of one escape sequence; None if it is not one."""
    if not body:
        return None
    if len(body) == 1:
        simple = {
            "F": d.field,
            "S": d.component,
            "T": d.subcomponent,
            "R": d.repetition,
            "E": d.escape,
            "P": d.truncation,
        }
        if body in simple:
            return simple[body] or ""
        return "" if body in _DROPPED else None
    head = body[0]
    if head == "X":
        hexits = body[1:]
        if _HEX.fullmatch(hexits):
            return decode_hex(bytes.fromhex(hexits), hex_codecs)
        return None
    if head == "Z":
        return ""
    if head in "CM":
        return "" if _HEX.fullmatch(body[1:]) else None
    if head == ".":
        command, argument = body[1:3], body[3:]
        if command in ("fi", "nf"):
            return "" if not argument.strip() else None
        if command == "br":
            return "\n" if not argument.strip() else None
        if command in ("in", "ti"):
            return "" if _count(argument) is not None else None
        count = _count(argument)
        if count is None:
            return None
        if command in ("sp", "ce"):
            return "\n" * (count if command == "sp" else 1)
        if command == "sk":
            return " " * count
    return None


def unescape(value: str, d: Delimiters, hex_codecs: tuple[str, ...]) -> str:
    """Decode the escape sequences of one leaf value (a field, component or subcomponent)."""
    esc = d.escape
    if not esc or esc not in value:
        return value
    out: list[str] = []
    position = 0
    length = len(value)
    while position < length:
        start = value.find(esc, position)
        if start < 0:
            out.append(value[position:])
            break
        out.append(value[position:start])
        end = value.find(esc, start + 1)
        if end < 0:
            out.append(value[start:])
            break
        replacement = _sequence(value[start + 1 : end], d, hex_codecs)
        if replacement is None:
            out.append(esc)
            position = start + 1
        else:
            out.append(replacement)
            position = end + 1
    return "".join(out)
