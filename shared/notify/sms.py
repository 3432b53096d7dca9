"""SMS length accounting: how many segments a text costs on the wire.

GSM 03.38 (3GPP TS 23.038) default alphabet: 160 septets in a single message, 153 per part once
the text is split (the user-data header takes the rest). Characters of the extension table cost two
septets (escape + char) and an escape pair is never split across parts. One character outside
both tables switches the whole message to UCS-2: 70 UTF-16 code units single, 67 per part, and a
surrogate pair is never split.
"""

from __future__ import annotations

from typing import Final

MAX_SEGMENTS: Final = 2
"""Most segments a notification SMS may cost (cost and readability; enforced by the renderer)."""

# Basic character set (the escape 0x1B itself is not a character).
GSM7_BASIC: Final = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION: Final = frozenset("\f^{}\\[~]|€")

_GSM_SINGLE, _GSM_PART = 160, 153
_UCS2_SINGLE, _UCS2_PART = 70, 67


def is_gsm7(text: str) -> bool:
    """True when every character fits the GSM-7 default alphabet (basic or extension table)."""
    return all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text)


def _pack(units: list[int], single: int, part: int) -> int:
    total = sum(units)
    if total <= single:
        return 1
    parts, used = 1, 0
    for size in units:  # greedy: an escape pair / surrogate pair stays in one part
        if used + size > part:
            parts, used = parts + 1, 0
        used += size
    return parts


def sms_segments(text: str) -> int:
    """Number of SMS segments ``text`` needs (0 for an empty text)."""
    if not text:
        return 0
    if is_gsm7(text):
        units = [2 if ch in GSM7_EXTENSION else 1 for ch in text]
        return _pack(units, _GSM_SINGLE, _GSM_PART)
    units = [2 if ord(ch) > 0xFFFF else 1 for ch in text]
    return _pack(units, _UCS2_SINGLE, _UCS2_PART)
