"""The one exception of the HL7 layer.

`HL7Error` means "this content can never succeed": retrying the same bytes will fail the same
way, so the consumer records it and negatively acknowledges (AR) instead of retrying. A bug in
this package surfaces as an ordinary exception instead, so it is retried after a fix rather than
silently turned into a permanent rejection.

The message and `reason` are built only from fixed codes and segment/field names, never from
message content, so both are safe to log and store (no PHI).
"""

from __future__ import annotations

__all__ = ["HL7Error", "in_group"]

_DESCRIPTIONS = {
    "no_msh": "no MSH segment heads the content",
    "unparseable": "MSH delimiters are unusable",
    "no_message_type": "MSH-9 message type empty",
    "no_control_id": "MSH-10 message control id empty",
    "multiple_messages": "more than one message given to parse_message; use split_messages",
}


class HL7Error(Exception):
    """Content that can never be processed.

    `reason` is a short, stable, PHI-free code: ``no_msh``, ``unparseable``, ``no_message_type``,
    ``no_control_id``, ``multiple_messages``, ``missing_segment:<SEG>``,
    ``missing_field:<SEG-n>`` or ``out_of_range:<SEG-n>`` (a timestamp without a UTC form); in a
    message with several patient groups, ``group<n>:<reason>`` (1-based) when every group has one.
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)

    def __str__(self) -> str:
        if self.reason in _DESCRIPTIONS:
            return f"HL7 message rejected ({self.reason}): {_DESCRIPTIONS[self.reason]}"
        kind, _, where = self.reason.partition(":")
        if kind == "missing_segment":
            return f"HL7 message rejected ({self.reason}): required {where} segment missing"
        if kind == "missing_field":
            return f"HL7 message rejected ({self.reason}): required {where} empty"
        if kind == "out_of_range":
            return f"HL7 message rejected ({self.reason}): {where} has no UTC instant in years 1-9999"
        return f"HL7 message rejected ({self.reason})"

    def __repr__(self) -> str:
        return f"HL7Error({self.reason!r})"


def in_group(index: int, reason: str) -> str:
    """The reason of the patient group at `index` (0-based) of a message with several groups."""
    return f"group{index + 1}:{reason}"
