"""The neutral result of reading one HL7 v2 message: the contract with the LIS consumer.

Conventions for every class here:

* Strings are already unescaped (``\\F\\`` is ``|``, ``\\.br\\`` is a newline, ...) and stripped;
  an empty value and HL7's explicit null ``""`` are both ``None``. Free text (TX/FT result
  values, notes) keeps leading spaces and inner line breaks; ``\\X0D0A\\`` stays ``"\\r\\n"``.
  Nothing else is normalised (phone formats, code case, ...): the consumer validates. Only
  message-structure codes (MSH-9, OBX-2) are upper-cased.
* Timestamps are timezone-aware and have a UTC form (years 1-9999 in UTC; a message holding one
  that does not is refused with ``out_of_range:<SEG-n>``). An HL7 timestamp without an offset
  is taken as UTC: HL7 says such a value is in the sender's local time, which we cannot know, so
  the consumer must not treat these as exact instants when the sender is in another zone.
* ``invalid_fields`` names fields that were present but could not be read (``"PID-7"``); the
  value is then ``None``. The message is still usable, the consumer decides whether it cares.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

__all__ = [
    "Address",
    "CodedValue",
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
]


@dataclass(frozen=True, slots=True)
class Header:
    """MSH. `message_type`/`trigger_event`/`structure` are MSH-9.1/.2/.3 upper-cased."""

    message_type: str
    trigger_event: str | None
    structure: str | None
    control_id: str | None
    sending_application: str | None
    sending_facility: str | None
    receiving_facility: str | None
    message_datetime: datetime | None
    processing_id: str | None
    version: str | None
    charset: str | None  # MSH-18 as declared, e.g. "8859/1"; not what decoding ended up using


@dataclass(frozen=True, slots=True)
class Identifier:
    """One CX: `value` is CX-1, `type` CX-5; `system` the first non-empty of CX-4.1 (namespace),
    CX-4.2 (universal id, e.g. an OID), MSH-4.1 (sending facility), else ``"LIS"``."""

    value: str
    system: str
    type: str | None


@dataclass(frozen=True, slots=True)
class PersonName:
    """XPN. Middle names follow the given name in `given`; the degree (XPN-6) is a suffix."""

    family: str | None
    given: tuple[str, ...]
    prefix: tuple[str, ...]
    suffix: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Address:
    """XAD, values as given (no country or postcode normalisation)."""

    line: tuple[str, ...]
    city: str | None
    state: str | None
    postal_code: str | None
    country: str | None


@dataclass(frozen=True, slots=True)
class PatientData:
    """The first PID of the message.

    `identifiers`: every PID-3 repetition with a value; when PID-3 has none, PID-2, then PID-4
    (old feeds put the only identifier there). See `Identifier` for the system.
    """

    identifiers: tuple[Identifier, ...]
    name: PersonName | None
    birth_date: date | None  # the date as written, never shifted by a time zone
    sex: str | None  # "male" | "female" | "other" | "unknown"
    address: Address | None
    phone: str | None
    email: str | None
    invalid_fields: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CodedValue:
    """CE/CWE: the primary triplet, or the alternate one when the primary is empty."""

    code: str | None
    display: str | None
    system: str | None


@dataclass(frozen=True, slots=True)
class ResultData:
    """One OBX: a result of an order, or (ORU v2.7+ PATIENT_OBSERVATION) an observation of the patient.

    `values` holds one rendered string per OBX-5 repetition; `value` is those joined with
    newlines for text types (TX, FT) and the first one otherwise. Rendering: SN is written out
    (``">^90"`` becomes ``">90"``, ``"^1^:^128"`` becomes ``"1:128"``); coded types (CE, CWE, CNE,
    CF) give their text, else code, and keep the structured codes in `coded_values`; every other
    type gives its text with any unescaped component separators kept literally.
    `sub_id` is OBX-4, which tells apart observations with the same code under one order (several
    isolates of a culture, each with its susceptibilities; repeated measurements).
    """

    set_id: str | None
    code: CodedValue
    value_type: str | None
    values: tuple[str, ...]
    value: str | None
    units: str | None
    reference_range: str | None
    abnormal_flags: tuple[str, ...]
    status: str | None
    observed_at: datetime | None
    notes: tuple[str, ...]
    coded_values: tuple[CodedValue, ...] = ()
    invalid_fields: tuple[str, ...] = ()
    sub_id: str | None = None
    # OBX-14 as sent (or OBR-7's, when it stood in for an empty OBX-14), when it was read into
    # `observed_at`: its precision (a date, a minute…) and whether it had an offset.
    observed_text: str | None = None


@dataclass(frozen=True, slots=True)
class ParentLink:
    """OBR-29 (the parent order's placer and filler numbers, each with its namespace) and OBR-26
    (the parent result: its OBX-3 code and OBX-4 sub-id) of a child order, e.g. the susceptibility
    panel of one isolate of a culture."""

    placer_number: str | None
    placer_namespace: str | None
    filler_number: str | None
    filler_namespace: str | None
    result_code: CodedValue | None
    result_sub_id: str | None


@dataclass(frozen=True, slots=True)
class OrderData:
    """One order: an ORC and/or OBR with the OBX and NTE that follow it.

    `priority` is ``"stat"``, ``"asap"`` or ``"routine"`` when the code is one of those, else
    the code as sent. `placer_namespace`/`filler_namespace` are EI-2 (namespace id), else EI-3
    (universal id), of ORC-2/OBR-2 and ORC-3/OBR-3: the system that assigned the number.
    """

    placer_number: str | None
    filler_number: str | None
    control: str | None
    code: CodedValue
    status: str | None
    priority: str | None
    ordered_at: datetime | None
    results: tuple[ResultData, ...]
    notes: tuple[str, ...]
    invalid_fields: tuple[str, ...] = ()
    placer_namespace: str | None = None
    filler_namespace: str | None = None
    parent: ParentLink | None = None


@dataclass(frozen=True, slots=True)
class MergeData:
    """MRG: the identifiers being merged away (MRG-1, else MRG-4, else MRG-2; CX rules as PID)."""

    prior_identifiers: tuple[Identifier, ...]


@dataclass(frozen=True, slots=True)
class PatientGroup:
    """One patient and what the message says about them (ORU's PATIENT_RESULT, an ADT^A39/A40
    PATIENT group with its MRG, the patient of an order message).

    `observations` are the patient-level OBX (ORU_R01 PATIENT_OBSERVATION, v2.7+: after the PID,
    before the visit and the first ORC/OBR). `problem` is set when the group itself can never be
    applied (a PHI-free reason such as ``missing_field:PID-3``); the message's other groups can.
    """

    patient: PatientData | None
    orders: tuple[OrderData, ...]
    observations: tuple[ResultData, ...] = ()
    merge: MergeData | None = None
    problem: str | None = None


@dataclass(frozen=True, slots=True)
class Message:
    """One message: its header and its patient groups, in message order.

    A PID starts a group; a repeated PID with the same identifiers continues it; orders before
    any PID belong to the first group. `patient`, `orders` and `merge` are the first group's.
    """

    header: Header
    groups: tuple[PatientGroup, ...]
    segment_ids: tuple[str, ...]
    # Fields (``SEG-n``) that held NUL characters: the values are kept without them (NUL is never
    # meaningful in HL7 and cannot be stored), and this says where the text was changed.
    nul_fields: tuple[str, ...] = ()

    @property
    def patient(self) -> PatientData | None:
        return self.groups[0].patient if self.groups else None

    @property
    def orders(self) -> tuple[OrderData, ...]:
        return self.groups[0].orders if self.groups else ()

    @property
    def merge(self) -> MergeData | None:
        return self.groups[0].merge if self.groups else None
