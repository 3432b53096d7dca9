"""Pure HL7 v2 layer: bytes -> neutral `Message` (no database, no I/O).

Entry points: `split_messages` (unwrap MLLP frames and FHS/BHS batches) and `parse_message`.
Content that can never succeed raises `HL7Error` with a PHI-free `reason`.
"""

from .errors import HL7Error
from .model import (
    Address,
    CodedValue,
    Header,
    Identifier,
    MergeData,
    Message,
    OrderData,
    ParentLink,
    PatientData,
    PatientGroup,
    PersonName,
    ResultData,
)
from .parse import content_digest, parse_message, split_messages

__all__ = [
    "Address",
    "CodedValue",
    "HL7Error",
    "Header",
    "Identifier",
    "MergeData",
    "Message",
    "OrderData",
    "ParentLink",
    "PatientData",
    "PatientGroup",
    "PersonName",
    "ResultData",
    "content_digest",
    "parse_message",
    "split_messages",
]
