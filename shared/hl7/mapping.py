"""Segments -> model values: the header, a PID, an MRG, an OBX, an order (ORC/OBR and what belongs
to it). Which segments form a patient group or an order is `structure`'s business.

A timestamp is out of range when it has no UTC form (`shared.instants.utc_instant`): the calendar's
edge with an offset, e.g. ``99991231235959-1400``. The model promises instants a consumer can
convert and store, and such a value is not a typo to skip like an unreadable one (which only lands
in ``invalid_fields``): it is refused with the field's name (``out_of_range:<SEG-n>``).
"""

from __future__ import annotations

import re
from datetime import datetime

from shared.instants import is_storable

from . import datatypes as dt
from .errors import HL7Error
from .model import CodedValue, Header, Identifier, MergeData, OrderData, ParentLink, PatientData, ResultData
from .segments import Segment
from .timestamps import parse_birth_date, parse_dtm

__all__ = ["MERGE_EVENTS", "header", "identifiers", "merge", "note", "order", "patient", "result"]

# ADT events whose structure carries MRG (merge, move and change-identifier events).
MERGE_EVENTS = frozenset({"A30", "A34", "A35", "A36", "A39", "A40", "A41", "A42"} | {f"A{n}" for n in range(43, 52)})
_GLUED_TYPE = re.compile(r"([A-Z0-9]{3})_([A-Z0-9]{3})")
_NO_CODE = CodedValue(code=None, display=None, system=None)


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


def header(msh: Segment) -> Header:
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


def identifiers(segment: Segment, fields: tuple[int, ...], fallback_system: str) -> tuple[Identifier, ...]:
    """CX repetitions of the first of `fields` that yields any identifier."""
    for n in fields:
        found = tuple(i for i in (dt.identifier(rep, fallback_system) for rep in segment.reps(n)) if i)
        if found:
            return found
    return ()


def patient(pid: Segment, fallback_system: str) -> PatientData:
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
        identifiers=identifiers(pid, (3, 2, 4), fallback_system),
        name=dt.person_name(pid.first(5)),
        birth_date=birth_date,
        sex=sex,
        address=dt.address(pid.first(11)),
        phone=next((p for p in map(dt.phone, telecoms) if p), None),
        email=next((e for e in map(dt.email, telecoms) if e), None),
        invalid_fields=tuple(invalid),
    )


def merge(mrg: Segment, fallback_system: str) -> MergeData:
    return MergeData(prior_identifiers=identifiers(mrg, (1, 4, 2), fallback_system))


def note(nte: Segment) -> str:
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


def _timestamp_text(segment: Segment | None, n: int, value: datetime | None) -> str | None:
    """SEG-n.1 as sent, when it was read into ``value`` (its precision and offset, which ``value`` loses)."""
    raw = segment.value(n) if segment is not None and value is not None else None
    return raw.strip() if raw else None


def result(obx: Segment, notes: list[str], order_time: datetime | None, order_time_text: str | None = None) -> ResultData:
    """One OBX; `order_time` (OBR-7, sent as `order_time_text`) stands in for an empty OBX-14."""
    invalid: list[str] = []
    value_type = obx.value(2)
    value_type = value_type.upper() if value_type else None
    values, value, coded = _values(obx, value_type)
    observed_at = _timestamp(obx, 14, invalid)
    observed_text = _timestamp_text(obx, 14, observed_at)
    if observed_at is None and not invalid:
        observed_at, observed_text = order_time, order_time_text
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
        notes=tuple(notes),
        coded_values=coded,
        invalid_fields=tuple(invalid),
        sub_id=obx.whole(4),
        observed_text=observed_text,
    )


def _number(orc: Segment | None, obr: Segment | None, orc_field: int, obr_field: int) -> tuple[str | None, str | None]:
    """(number, namespace) of ORC-n, else of OBR-n."""
    for segment, n in ((orc, orc_field), (obr, obr_field)):
        if segment is not None:
            number, namespace = dt.entity_identifier(segment.first(n))
            if number is not None:
                return number, namespace
    return None, None


def _parent(orc: Segment | None, obr: Segment | None) -> ParentLink | None:
    """OBR-29 (else ORC-8) parent numbers and OBR-26 parent result, when the order has any."""
    numbers = obr.first(29) if obr is not None and obr.field(29) else (orc.first(8) if orc is not None else None)
    placer = filler = (None, None)
    if numbers is not None:
        placer, filler = dt.sub_entity_identifier(numbers, 1), dt.sub_entity_identifier(numbers, 2)
    prl = obr.first(26) if obr is not None else None
    code = dt.sub_coded_value(prl, 1) if prl is not None else None
    sub_id = prl.component(2) if prl is not None else None
    if placer[0] is None and filler[0] is None and code is None:
        return None
    return ParentLink(placer_number=placer[0], placer_namespace=placer[1], filler_number=filler[0],
                      filler_namespace=filler[1], result_code=code, result_sub_id=sub_id)


def order(orc: Segment | None, obr: Segment | None, tq1: Segment | None,
          results: list[tuple[Segment, list[str]]], notes: list[str]) -> OrderData:
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
    placer, placer_ns = _number(orc, obr, 2, 2)
    filler, filler_ns = _number(orc, obr, 3, 3)
    return OrderData(
        placer_number=placer,
        filler_number=filler,
        control=orc.value(1) if orc else None,
        code=dt.coded_value(obr.first(4)) if obr else _NO_CODE,
        status=(orc.value(5) if orc else None) or (obr.value(25) if obr else None),
        priority=dt.priority(priority),
        ordered_at=ordered_at,
        results=tuple(result(obx, obx_notes, observed, _timestamp_text(obr, 7, observed)) for obx, obx_notes in results),
        notes=tuple(notes),
        invalid_fields=tuple(invalid),
        placer_namespace=placer_ns,
        filler_namespace=filler_ns,
        parent=_parent(orc, obr),
    )
