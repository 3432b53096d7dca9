"""Segments -> `Message`: the header, the patient/order grouping and the required-content rules.

Grouping is a walk over the segments rather than a per-structure grammar, so that v2.3 to v2.8
variants and sloppy senders map the same way:

* PID starts a patient group. A later PID with the same (non-empty) identifiers continues the
  first group; any other PID starts an extra group that is counted, not mapped (see `Message`).
* ORC starts an order, and the OBR right after it joins that order. OUL^R22/R23/R24 put ORC
  after OBR, so there an ORC joins the OBR before it when that order has no ORC and no result.
* An OBR not joining a pending ORC starts an order. OBX and NTE belong to the latest order; an
  NTE goes to the latest OBX, or to the order when no OBX has come yet. An NTE before any
  order (patient or message level) is not mapped.
* SPM starts a specimen: OBX/NTE after it (until the next ORC/OBR/PID) describe the specimen,
  not a result, and are not mapped.
* An OBX with no order before it is an orphan: normal in ADT (height, weight), fatal in ORU.
* Z-segments and every other segment are kept in `segment_ids` and otherwise ignored.

Required content (HL7Error reasons, checked in this order): MSH-9 ('no_message_type'), MSH-10
('no_control_id'), MSH-7 in range ('out_of_range:MSH-7'); ADT and ORU: PID ('missing_segment:PID')
with an identifier ('missing_field:PID-3'); ADT merges: MRG ('missing_segment:MRG') with an identifier
('missing_field:MRG-1'); ORU and OUL: an OBR or an order with results, and for ORU no orphan OBX
('missing_segment:OBR'); ORM and OML: an order ('missing_segment:ORC'); then every mapped timestamp
in range ('out_of_range:OBR-7', 'ORC-9', 'OBX-14').

A timestamp is out of range when it has no UTC form (`shared.instants.utc_instant`): the calendar's
edge with an offset, e.g. ``99991231235959-1400``. The model promises instants a consumer can
convert and store, and such a value is not a typo to skip like an unreadable one (which only lands
in ``invalid_fields``): it is refused with the field's name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from shared.instants import is_storable

from . import datatypes as dt
from .errors import HL7Error
from .model import CodedValue, Header, Identifier, MergeData, Message, OrderData, PatientData, ResultData
from .segments import Segment
from .timestamps import parse_birth_date, parse_dtm

__all__ = ["build_message"]

# ADT events whose structure carries MRG (merge, move and change-identifier events).
_MERGE_EVENTS = frozenset({"A30", "A34", "A35", "A36", "A39", "A40", "A41", "A42"} | {f"A{n}" for n in range(43, 52)})
_OBR_BEFORE_ORC = frozenset({("OUL", "R22"), ("OUL", "R23"), ("OUL", "R24")})
_GLUED_TYPE = re.compile(r"([A-Z0-9]{3})_([A-Z0-9]{3})")
_NO_CODE = CodedValue(code=None, display=None, system=None)


@dataclass
class _Result:
    obx: Segment
    notes: list[str] = field(default_factory=list)


@dataclass
class _Order:
    orc: Segment | None = None
    obr: Segment | None = None
    tq1: Segment | None = None
    results: list[_Result] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _timestamp(segment: Segment | None, n: int, invalid: list[str]) -> datetime | None:
    """SEG-n.1 as a datetime; None when empty, None plus an `invalid` entry when unreadable.

    Raises HL7Error ``out_of_range:SEG-n`` for a value without a UTC form (see the module docstring).
    """
    raw = segment.value(n) if segment is not None else None
    if segment is None or raw is None:
        return None
    try:
        value = parse_dtm(raw)
    except ValueError:
        invalid.append(f"{segment.id}-{n}")
        return None
    if not is_storable(value):
        raise HL7Error(f"out_of_range:{segment.id}-{n}")
    return value


def _header(msh: Segment) -> Header:
    kind = msh.first(9)
    parts = [kind.component(1), kind.component(2), kind.component(3)]
    raw_kind = msh.field(9)
    if msh.delimiters.component != "^" and "^" in raw_kind and parts[1] is None:
        # Custom delimiters, yet MSH-9 written with the standard "^" (seen in the wild).
        parts = [msh.clean(part) for part in raw_kind.split("^")[:3]]
        parts += [None] * (3 - len(parts))
    message_type, trigger, structure = (p.upper() if p else None for p in parts)
    if message_type and trigger is None and (glued := _GLUED_TYPE.fullmatch(message_type)):
        message_type, trigger = glued.group(1), glued.group(2)
    if not message_type:
        raise HL7Error("no_message_type")
    control_id = msh.whole(10)
    if control_id is None:
        raise HL7Error("no_control_id")
    return Header(
        message_type=message_type,
        trigger_event=trigger,
        structure=structure,
        control_id=control_id,
        sending_application=msh.value(3),
        sending_facility=msh.value(4),
        receiving_facility=msh.value(6),
        message_datetime=_timestamp(msh, 7, []),
        processing_id=msh.value(11),
        version=msh.value(12),
        charset=msh.value(18),
    )


def _identifiers(segment: Segment, fields: tuple[int, ...], fallback_system: str) -> tuple[Identifier, ...]:
    """CX repetitions of the first of `fields` that yields any identifier."""
    for n in fields:
        found = tuple(i for i in (dt.identifier(rep, fallback_system) for rep in segment.reps(n)) if i)
        if found:
            return found
    return ()


def _patient(pid: Segment, fallback_system: str) -> PatientData:
    invalid: list[str] = []
    birth_date = None
    raw_birth = pid.value(7)
    if raw_birth is not None:
        try:
            birth_date = parse_birth_date(raw_birth)
        except ValueError:
            invalid.append("PID-7")
    raw_sex = pid.value(8)
    sex = dt.sex(raw_sex)
    if raw_sex is not None and sex is None:
        invalid.append("PID-8")
    telecoms = pid.reps(13)
    return PatientData(
        identifiers=_identifiers(pid, (3, 2, 4), fallback_system),
        name=dt.person_name(pid.first(5)),
        birth_date=birth_date,
        sex=sex,
        address=dt.address(pid.first(11)),
        phone=next((p for p in map(dt.phone, telecoms) if p), None),
        email=next((e for e in map(dt.email, telecoms) if e), None),
        invalid_fields=tuple(invalid),
    )


def _note(nte: Segment) -> str:
    """NTE-3; repetitions are lines. An empty comment is kept as "" (a paragraph break)."""
    return "\n".join(nte.text_lines(3)).strip("\n")


def _values(obx: Segment, value_type: str | None) -> tuple[tuple[str, ...], str | None, tuple[CodedValue, ...]]:
    reps = obx.reps(5)
    if value_type in dt.TEXT_TYPES:
        lines = [rep.text() for rep in reps]
        while lines and not lines[-1]:
            lines.pop()
        while lines and not lines[0]:
            lines.pop(0)
        return tuple(lines), "\n".join(lines) or None, ()
    rendered = [dt.render_value(rep, value_type) for rep in reps]
    values = tuple(text for text, _ in rendered if text)
    coded = tuple(code for _, code in rendered if code)
    return values, (values[0] if values else None), coded


def _result(result: _Result, order_time: datetime | None) -> ResultData:
    obx = result.obx
    invalid: list[str] = []
    value_type = obx.value(2)
    value_type = value_type.upper() if value_type else None
    values, value, coded = _values(obx, value_type)
    observed_at = _timestamp(obx, 14, invalid)
    if observed_at is None and not invalid:
        observed_at = order_time
    return ResultData(
        set_id=obx.whole(1),
        code=dt.coded_value(obx.first(3)),
        value_type=value_type,
        values=values,
        value=value,
        units=obx.value(6, 1) or obx.value(6, 2),
        reference_range=obx.whole(7),
        abnormal_flags=tuple(flag for flag in (rep.component(1) for rep in obx.reps(8)) if flag),
        status=obx.value(11),
        observed_at=observed_at,
        notes=tuple(result.notes),
        coded_values=coded,
        invalid_fields=tuple(invalid),
    )


def _order(order: _Order) -> OrderData:
    orc, obr, tq1 = order.orc, order.obr, order.tq1
    invalid: list[str] = []
    observed = _timestamp(obr, 7, invalid)  # also the default time of the order's results
    ordered_at = observed
    if observed is None and not invalid:  # OBR-7 empty (not unreadable): ORC-9
        ordered_at = _timestamp(orc, 9, invalid)
    priority = (
        (obr.first(27).component(6) if obr else None)
        or (orc.first(7).component(6) if orc else None)
        or (tq1.value(9) if tq1 else None)
    )
    return OrderData(
        placer_number=(orc.value(2) if orc else None) or (obr.value(2) if obr else None),
        filler_number=(orc.value(3) if orc else None) or (obr.value(3) if obr else None),
        control=orc.value(1) if orc else None,
        code=dt.coded_value(obr.first(4)) if obr else _NO_CODE,
        status=(orc.value(5) if orc else None) or (obr.value(25) if obr else None),
        priority=dt.priority(priority),
        ordered_at=ordered_at,
        results=tuple(_result(result, observed) for result in order.results),
        notes=tuple(order.notes),
        invalid_fields=tuple(invalid),
    )


class _Walk:
    """One pass over the segments, grouping them as described in the module docstring."""

    def __init__(self, header: Header, fallback_system: str) -> None:
        self.fallback_system = fallback_system
        self.obr_first = (header.message_type, header.trigger_event) in _OBR_BEFORE_ORC
        self.pid: Segment | None = None
        self.mrg: Segment | None = None
        self.first_ids: tuple[Identifier, ...] = ()
        self.extra_groups = 0
        self.orders: list[_Order] = []  # first patient group only
        self.all_orders: list[_Order] = []
        self.orphan_obx = False
        self.order: _Order | None = None
        self.result: _Result | None = None
        self.in_specimen = False

    def _start_order(self, order: _Order) -> None:
        self.order = order
        self.all_orders.append(order)
        if not self.extra_groups:
            self.orders.append(order)

    def _on_pid(self, segment: Segment) -> None:
        if self.pid is None:
            self.pid = segment
            self.first_ids = _identifiers(segment, (3, 2, 4), self.fallback_system)
        elif not self.first_ids or _identifiers(segment, (3, 2, 4), self.fallback_system) != self.first_ids:
            self.extra_groups += 1
        self.order, self.result, self.in_specimen = None, None, False

    def _on_orc(self, segment: Segment) -> None:
        order = self.order
        if self.obr_first and order and order.obr and not order.orc and not order.results:
            order.orc = segment
        else:
            self._start_order(_Order(orc=segment))
        self.result, self.in_specimen = None, False

    def _on_obr(self, segment: Segment) -> None:
        order = self.order
        if order and order.orc and not order.obr and not order.results:
            order.obr = segment
        else:
            self._start_order(_Order(obr=segment))
        self.result, self.in_specimen = None, False

    def _on_obx(self, segment: Segment) -> None:
        self.result = None
        if self.in_specimen:
            return
        if self.order is None:
            self.orphan_obx = True
            return
        self.result = _Result(segment)
        self.order.results.append(self.result)

    def _on_nte(self, segment: Segment) -> None:
        if self.in_specimen:
            return
        if self.result is not None:
            self.result.notes.append(_note(segment))
        elif self.order is not None:
            self.order.notes.append(_note(segment))

    def visit(self, segment: Segment) -> None:
        kind = segment.id
        if kind == "PID":
            self._on_pid(segment)
        elif kind == "ORC":
            self._on_orc(segment)
        elif kind == "OBR":
            self._on_obr(segment)
        elif kind == "OBX":
            self._on_obx(segment)
        elif kind == "NTE":
            self._on_nte(segment)
        elif kind == "SPM":
            self.in_specimen, self.result = True, None
        elif kind == "TQ1" and self.order is not None and self.order.tq1 is None:
            self.order.tq1 = segment
        elif kind == "MRG" and self.mrg is None:
            self.mrg = segment


def _require(header: Header, walk: _Walk, patient: PatientData | None, merge: MergeData | None) -> None:
    kind = header.message_type
    if kind in ("ADT", "ORU"):
        if patient is None:
            raise HL7Error("missing_segment:PID")
        if not patient.identifiers:
            raise HL7Error("missing_field:PID-3")
    if kind == "ADT" and header.trigger_event in _MERGE_EVENTS:
        if merge is None:
            raise HL7Error("missing_segment:MRG")
        if not merge.prior_identifiers:
            raise HL7Error("missing_field:MRG-1")
    if kind in ("ORU", "OUL"):
        has_results = any(order.obr or order.results for order in walk.all_orders)
        if not has_results or (kind == "ORU" and walk.orphan_obx):
            raise HL7Error("missing_segment:OBR")
    if kind in ("ORM", "OML") and not walk.all_orders:
        raise HL7Error("missing_segment:ORC")


def build_message(segments: list[Segment]) -> Message:
    """Map the segments of one message (the first being MSH); raises HL7Error."""
    msh = segments[0]
    header = _header(msh)
    fallback_system = msh.value(4) or "LIS"
    walk = _Walk(header, fallback_system)
    for segment in segments[1:]:
        walk.visit(segment)
    patient = _patient(walk.pid, fallback_system) if walk.pid is not None else None
    merge = None
    if walk.mrg is not None:
        merge = MergeData(prior_identifiers=_identifiers(walk.mrg, (1, 4, 2), fallback_system))
    _require(header, walk, patient, merge)
    return Message(
        header=header,
        patient=patient,
        orders=tuple(_order(order) for order in walk.orders),
        merge=merge,
        segment_ids=tuple(segment.id for segment in segments),
        extra_patient_groups=walk.extra_groups,
    )
