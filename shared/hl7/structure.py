"""Segments -> `Message`: the header, the patient groups with their orders and observations, and
the required-content rules.

Grouping is a walk over the segments rather than a per-structure grammar, so that v2.3 to v2.9
variants and sloppy senders map the same way:

* PID starts a patient group (ORU_R01 PATIENT_RESULT, ADT_A39 PATIENT, …). A PID with the same
  (non-empty) identifiers as the current group's continues that group; any other PID starts a new
  one. Orders and MRG before any PID belong to the first group.
* ORC starts an order, and the OBR right after it joins that order. OUL^R22/R23/R24 put ORC
  after OBR, so there an ORC joins the OBR before it when that order has no ORC and no result.
* An OBR not joining a pending ORC starts an order. OBX and NTE belong to the latest order of
  the group; an NTE goes to the latest OBX, or to the order when no OBX has come yet.
* In ORU, an OBX after the PID and before the group's first ORC/OBR is a patient-level
  observation (PATIENT_OBSERVATION, v2.7+; converters send it under 2.5.1 too). In ADT such OBX
  (height, weight) are not mapped.
* SPM starts a specimen. In ORU the specimen belongs to the current order (ORDER_OBSERVATION's
  SPECIMEN group), and its OBX (SPECIMEN_OBSERVATION) are results of that order. In OUL/OML the
  specimen groups orders instead, and the OBX/NTE after an SPM describe the specimen: not mapped.
* PRT, CTD, TQ1/TQ2, FT1, CTI, TXA, PV1/PV2, PD1, NK1, Z-segments and every other segment are
  kept in `segment_ids` and otherwise ignored (TQ1-9 is read as the order priority); they do not
  change which OBX or NTE comes next.

Required content (HL7Error reasons, checked in this order): MSH-9 ('no_message_type'), MSH-10
('no_control_id'), MSH-7 in range ('out_of_range:MSH-7'); then per group: ADT and ORU: PID
('missing_segment:PID') with an identifier ('missing_field:PID-3'); ADT merges: MRG
('missing_segment:MRG') with an identifier ('missing_field:MRG-1'); ORU and OUL: an OBR or an order
with results ('missing_segment:OBR'); ORM and OML: an order ('missing_segment:ORC'); then every
mapped timestamp of the group in range ('out_of_range:OBR-7', 'ORC-9', 'OBX-14'). A message with
one group raises its group's reason; with several, a group's reason is its `PatientGroup.problem`
and the other groups stay usable, and only when every group has one is ``group<n>:<reason>`` of
the first raised.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from . import mapping
from .errors import HL7Error, in_group
from .model import Header, Identifier, Message, PatientGroup, ResultData
from .segments import Segment

__all__ = ["build_message"]

_OBR_BEFORE_ORC = frozenset({("OUL", "R22"), ("OUL", "R23"), ("OUL", "R24")})


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
    in_specimen: bool = False


@dataclass
class _Group:
    pid: Segment | None = None
    ids: tuple[Identifier, ...] = ()
    mrg: Segment | None = None
    orders: list[_Order] = field(default_factory=list)
    observations: list[_Result] = field(default_factory=list)


class _Walk:
    """One pass over the segments, grouping them as described in the module docstring."""

    def __init__(self, header: Header, fallback_system: str) -> None:
        self.fallback_system = fallback_system
        self.kind = header.message_type
        self.obr_first = (header.message_type, header.trigger_event) in _OBR_BEFORE_ORC
        self.groups: list[_Group] = []
        self.order: _Order | None = None
        self.result: _Result | None = None
        self.specimen = False  # after an SPM that does not belong to an order (OUL, OML)

    @property
    def group(self) -> _Group:
        if not self.groups:
            self.groups.append(_Group())
        return self.groups[-1]

    def _start_order(self, order: _Order) -> None:
        self.order = order
        self.group.orders.append(order)

    def _on_pid(self, segment: Segment) -> None:
        ids = mapping.identifiers(segment, (3, 2, 4), self.fallback_system)
        current = self.groups[-1] if self.groups else None
        if current is not None and current.pid is None:
            current.pid, current.ids = segment, ids  # orders/MRG came first: they are this patient's
        elif current is None or not ids or ids != current.ids:
            self.groups.append(_Group(pid=segment, ids=ids))
        self.order, self.result, self.specimen = None, None, False

    def _on_orc(self, segment: Segment) -> None:
        order = self.order
        if self.obr_first and order and order.obr and not order.orc and not order.results:
            order.orc = segment
        else:
            self._start_order(_Order(orc=segment))
        self.result, self.specimen = None, False

    def _on_obr(self, segment: Segment) -> None:
        order = self.order
        if order and order.orc and not order.obr and not order.results and not order.in_specimen:
            order.obr = segment
        else:
            self._start_order(_Order(obr=segment))
        self.result, self.specimen = None, False

    def _on_spm(self) -> None:
        self.result = None
        if self.kind == "ORU" and self.order is not None:
            self.order.in_specimen = True  # ORU: the order's SPECIMEN group; its OBX are the order's
        else:
            self.specimen = True

    def _on_obx(self, segment: Segment) -> None:
        self.result = None
        if self.specimen:
            return
        if self.order is not None:
            self.result = _Result(segment)
            self.order.results.append(self.result)
        elif self.kind == "ORU":
            self.result = _Result(segment)  # PATIENT_OBSERVATION
            self.group.observations.append(self.result)

    def _on_nte(self, segment: Segment) -> None:
        if self.specimen:
            return
        if self.result is not None:
            self.result.notes.append(mapping.note(segment))
        elif self.order is not None:
            self.order.notes.append(mapping.note(segment))

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
            self._on_spm()
        elif kind == "TQ1" and self.order is not None and self.order.tq1 is None:
            self.order.tq1 = segment
        elif kind == "MRG" and self.group.mrg is None:
            self.group.mrg = segment


def _problem(header: Header, group: _Group, built: PatientGroup) -> str | None:
    """Why this group can never be applied, or None."""
    kind = header.message_type
    if kind in ("ADT", "ORU"):
        if built.patient is None:
            return "missing_segment:PID"
        if not built.patient.identifiers:
            return "missing_field:PID-3"
    if kind == "ADT" and header.trigger_event in mapping.MERGE_EVENTS:
        if built.merge is None:
            return "missing_segment:MRG"
        if not built.merge.prior_identifiers:
            return "missing_field:MRG-1"
    if kind in ("ORU", "OUL") and not any(order.obr or order.results for order in group.orders):
        return "missing_segment:OBR"
    if kind in ("ORM", "OML") and not group.orders:
        return "missing_segment:ORC"
    return None


def _observation(item: _Result) -> ResultData:
    return mapping.result(item.obx, item.notes, None)


def _build(header: Header, group: _Group, fallback_system: str) -> PatientGroup:
    """The group's model; its structure is checked before its orders are read (a group missing its
    PID is reported as that, not as a timestamp of one of its orders)."""
    built = PatientGroup(
        patient=mapping.patient(group.pid, fallback_system) if group.pid is not None else None,
        orders=(),
        merge=mapping.merge(group.mrg, fallback_system) if group.mrg is not None else None,
    )
    problem = _problem(header, group, built)
    if problem is not None:
        return replace(built, problem=problem)
    try:
        orders = tuple(mapping.order(o.orc, o.obr, o.tq1, [(r.obx, r.notes) for r in o.results], o.notes)
                       for o in group.orders)
        observations = tuple(_observation(item) for item in group.observations)
    except HL7Error as exc:  # a timestamp without a UTC form
        return replace(built, problem=exc.reason)
    return replace(built, orders=orders, observations=observations)


def build_message(segments: list[Segment]) -> Message:
    """Map the segments of one message (the first being MSH); raises HL7Error."""
    msh = segments[0]
    header = mapping.header(msh)
    fallback_system = msh.value(4) or "LIS"
    walk = _Walk(header, fallback_system)
    for segment in segments[1:]:
        walk.visit(segment)
    groups = tuple(_build(header, group, fallback_system) for group in (walk.groups or [_Group()]))
    problems = [(n, g.problem) for n, g in enumerate(groups) if g.problem is not None]
    if problems and len(problems) == len(groups):
        index, reason = problems[0]
        raise HL7Error(reason if len(groups) == 1 else in_group(index, reason))
    return Message(header=header, groups=groups, segment_ids=tuple(segment.id for segment in segments))
