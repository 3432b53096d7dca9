"""Rendering an order for the LIS: ORM^O01 or OML^O21 (HL7 v2.5.1), one order per message.

ORC-1 is the order control: ``NW`` (new, from order.requested), ``CA`` (cancel, order.cancelled),
``XO`` (change, an order changed before the lab accepted it). The placer number goes in ORC-2 and
OBR-2 (EI: number^namespace), the filler number, once the lab gave one, in ORC-3/OBR-3; PID-3
lists every identifier of the patient (CX: value^^^system^type), so the LIS finds its own. ORM and
OML carry the same segments here (MSH, PID, ORC, OBR, NTE); MSH-9 tells them apart. Every value
is escaped, so a delimiter inside data never shifts a field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Literal

Action = Literal["new", "cancel", "change"]
MessageType = Literal["ORM^O01", "OML^O21"]
ORDER_CONTROL: dict[str, str] = {"new": "NW", "cancel": "CA", "change": "XO"}
_STRUCTURE = {"ORM^O01": "ORM^O01^ORM_O01", "OML^O21": "OML^O21^OML_O21"}
_PRIORITY = {"stat": "S", "asap": "A", "routine": "R"}
_SEX = {"female": "F", "male": "M", "other": "O", "unknown": "U"}
_ESCAPES = (("\\", "\\E\\"), ("|", "\\F\\"), ("^", "\\S\\"), ("&", "\\T\\"), ("~", "\\R\\"))


@dataclass(frozen=True)
class PatientIdentity:
    identifiers: tuple[tuple[str, str, str | None], ...]  # (value, system, type code)
    family: str
    given: tuple[str, ...] = ()
    birth_date: date | None = None
    sex: str | None = None


@dataclass(frozen=True)
class OutboundOrder:
    action: Action
    control_id: str  # MSH-10: unique per message (the event id), so the LIS can deduplicate
    placer_number: str
    placer_namespace: str
    patient: PatientIdentity
    code: str | None = None
    code_display: str | None = None
    code_system: str | None = None
    filler_number: str | None = None
    filler_namespace: str = ""
    priority: str | None = None
    ordered_at: datetime | None = None
    notes: str | None = None
    sent_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))


@dataclass(frozen=True)
class Endpoints:
    sending_application: str = "PATIENT-MGT"
    sending_facility: str = ""
    receiving_application: str = ""
    receiving_facility: str = ""


def escape(value: str | None) -> str:
    text = (value or "").replace("\r", " ").replace("\n", " ")
    for char, sequence in _ESCAPES:
        text = text.replace(char, sequence)
    return text


def _ts(value: datetime | None) -> str:
    if value is None:
        return ""
    return value.astimezone(timezone.utc).strftime("%Y%m%d%H%M%S+0000")


def _ei(number: str | None, namespace: str) -> str:
    return f"{escape(number)}^{escape(namespace)}" if number and namespace else escape(number)


def render_order(order: OutboundOrder, message_type: MessageType = "ORM^O01", endpoints: Endpoints = Endpoints()) -> bytes:
    """The HL7 message (segments separated by CR, UTF-8) for one order event."""
    patient = order.patient
    cx = "~".join(f"{escape(v)}^^^{escape(system)}^{escape(kind)}" for v, system, kind in patient.identifiers)
    name = "^".join([escape(patient.family), *(escape(g) for g in patient.given[:2])])
    placer, filler = _ei(order.placer_number, order.placer_namespace), _ei(order.filler_number, order.filler_namespace)
    service = "^".join([escape(order.code), escape(order.code_display), escape(order.code_system)]) if order.code else ""
    priority = _PRIORITY.get(order.priority or "", "")
    e = endpoints
    segments = [
        "|".join(["MSH", "^~\\&", escape(e.sending_application), escape(e.sending_facility), escape(e.receiving_application),
                  escape(e.receiving_facility), _ts(order.sent_at), "", _STRUCTURE[message_type], escape(order.control_id),
                  "P", "2.5.1", "", "", "AL", "NE", "", "UNICODE UTF-8"]),
        "|".join(["PID", "1", "", cx, "", name, "", patient.birth_date.strftime("%Y%m%d") if patient.birth_date else "",
                  _SEX.get(patient.sex or "", "")]),
        "|".join(["ORC", ORDER_CONTROL[order.action], placer, filler, "", "", "", f"^^^^^{priority}" if priority else "", "", "",
                  _ts(order.ordered_at)]),
        "|".join(["OBR", "1", placer, filler, service, "", "", _ts(order.ordered_at)]),
    ]
    if order.notes:
        segments.append("|".join(["NTE", "1", "P", escape(order.notes)]))
    return ("\r".join(segments) + "\r").encode("utf-8")
