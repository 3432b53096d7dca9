"""The JSON LIS event: the project's own alternative to HL7 v2 for a LIS that speaks JSON.

One event is one message: ``patient`` (demographics, like ADT^A08), ``order`` (orders placed,
changed or cancelled, like ORM^O01) or ``result`` (results for orders, like ORU^R01). It is
converted to the same neutral model the HL7 parser produces (`shared.hl7.model.Message`), so
both formats go through one mapping and obey the same ordering and dedupe rules:
``message_id`` plays MSH-10, ``sending_facility`` MSH-4, ``sent_at`` MSH-7.

The JSON Schema is generated from these models: ``docs/lis-event.schema.json``
(``patient-mgt lis schema`` rewrites it; a test keeps it in step).
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, model_validator
from pydantic_core import PydanticCustomError

from shared.hl7.model import (
    Address,
    CodedValue,
    Header,
    Identifier,
    Message,
    OrderData,
    PatientData,
    PatientGroup,
    PersonName,
    ResultData,
)
from shared.instants import is_storable

SCHEMA_ID = "https://patient-mgt.example.org/docs/lis-event.schema.json"
JSON_VERSION = "json/1"

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
LongText = Annotated[str, StringConstraints(max_length=20000)]
ShortCode = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20)]
OUT_OF_RANGE = "out_of_range"


def _storable(value: datetime) -> datetime:
    if not is_storable(value):
        raise PydanticCustomError(OUT_OF_RANGE, "no UTC instant in years 1-9999")
    return value


# RFC 3339 with an offset, with a UTC form the database can hold (else the error type is OUT_OF_RANGE).
Instant = Annotated[AwareDatetime, AfterValidator(_storable)]


EXAMPLE = {
    "version": "1",
    "event": "result",
    "message_id": "LAB-000123",
    "sending_facility": "CENTRAL-LAB",
    "sent_at": "2026-11-25T10:15:00+01:00",
    "patient": {
        "identifiers": [{"value": "MRN-4711", "system": "HOSPITAL", "type": "MR"}],
        "name": {"family": "Doe", "given": ["Jane"]},
        "birth_date": "1980-04-01",
        "sex": "female",
    },
    "orders": [{
        "placer_number": "PM10000017",
        "filler_number": "F-99812",
        "code": {"code": "2823-3", "display": "Potassium", "system": "LN"},
        "status": "F",
        "results": [{
            "code": {"code": "2823-3", "display": "Potassium", "system": "LN"},
            "value_type": "NM", "values": ["4.2"], "units": "mmol/L", "reference_range": "3.5-5.1", "status": "F",
            "observed_at": "2026-11-25T09:40:00+01:00",
        }],
    }],
}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class JsonIdentifier(_Model):
    value: Text
    system: Text | None = Field(default=None, description="Assigning authority; default: sending_facility, else LIS.")
    type: Annotated[str, StringConstraints(max_length=64)] | None = Field(default=None, description="e.g. MR, SS, PI")


class JsonName(_Model):
    family: Text | None = None
    given: list[Text] = Field(default_factory=list, max_length=10)
    prefix: list[Text] = Field(default_factory=list, max_length=5)
    suffix: list[Text] = Field(default_factory=list, max_length=5)


class JsonAddress(_Model):
    line: list[Text] = Field(default_factory=list, max_length=5)
    city: Text | None = None
    state: Text | None = None
    postal_code: Annotated[str, StringConstraints(max_length=20)] | None = None
    country: Text | None = None


class JsonPatient(_Model):
    identifiers: list[JsonIdentifier] = Field(min_length=1, max_length=20)
    name: JsonName | None = None
    birth_date: date | None = None
    sex: Literal["male", "female", "other", "unknown"] | None = None
    address: JsonAddress | None = None
    phone: Annotated[str, StringConstraints(max_length=40)] | None = Field(default=None, description="E.164, e.g. +14155550123")
    email: Annotated[str, StringConstraints(max_length=254)] | None = None


class JsonCode(_Model):
    code: Annotated[str, StringConstraints(max_length=100)] | None = None
    display: Annotated[str, StringConstraints(max_length=300)] | None = None
    system: Annotated[str, StringConstraints(max_length=200)] | None = Field(default=None, description="e.g. LN for LOINC")


class JsonResult(_Model):
    code: JsonCode
    value_type: Annotated[str, StringConstraints(max_length=3)] | None = Field(default=None, description="HL7 OBX-2: NM, ST, TX, SN, CWE…")
    values: list[LongText] = Field(default_factory=list, max_length=100, description="One entry per repetition")
    units: Annotated[str, StringConstraints(max_length=100)] | None = None
    reference_range: Annotated[str, StringConstraints(max_length=200)] | None = None
    abnormal_flags: list[ShortCode] = Field(default_factory=list, max_length=10)
    status: Literal["P", "F", "C", "X", "I", "R", "S", "D", "W", "U", "N", "O"] = Field(
        description="HL7 OBX-11: P preliminary, F final, C corrected, X cannot be obtained…"
    )
    observed_at: Instant | None = None
    notes: list[LongText] = Field(default_factory=list, max_length=50)


class JsonOrder(_Model):
    model_config = ConfigDict(
        extra="forbid", frozen=True, str_strip_whitespace=True,
        json_schema_extra={"anyOf": [
            {"required": ["placer_number"], "properties": {"placer_number": {"type": "string"}}},
            {"required": ["filler_number"], "properties": {"filler_number": {"type": "string"}}},
        ]},
    )

    placer_number: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)] | None = None
    filler_number: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)] | None = None
    control: Literal["NW", "CA", "OC", "DC", "XO", "SC", "RE"] | None = Field(
        default=None, description="HL7 ORC-1: NW new, CA/OC/DC cancel, XO change, SC status changed, RE results"
    )
    code: JsonCode | None = None
    status: ShortCode | None = Field(default=None, description="HL7 ORC-5 or OBR-25 code (SC, IP, CM, P, F, C, X…)")
    priority: Annotated[str, StringConstraints(max_length=32)] | None = Field(default=None, description="stat, asap, routine")
    ordered_at: Instant | None = None
    notes: list[LongText] = Field(default_factory=list, max_length=50)
    results: list[JsonResult] = Field(default_factory=list, max_length=500)

    @model_validator(mode="after")
    def _has_a_number(self) -> JsonOrder:
        if self.placer_number is None and self.filler_number is None:
            raise ValueError("an order needs placer_number or filler_number")
        return self


class LisEvent(_Model):
    """A JSON LIS event (one message)."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, str_strip_whitespace=True,
        json_schema_extra={
            "$id": SCHEMA_ID,
            "title": "LIS event",
            "allOf": [
                {"if": {"properties": {"event": {"const": "patient"}}},
                 "then": {"required": ["patient"], "properties": {"patient": {"type": "object"}, "orders": {"maxItems": 0}}}},
                {"if": {"properties": {"event": {"enum": ["order", "result"]}}},
                 "then": {"required": ["orders"], "properties": {"orders": {"minItems": 1}}}},
                {"if": {"properties": {"event": {"const": "result"}}},
                 "then": {"properties": {"orders": {"contains": {"required": ["results"],
                                                                "properties": {"results": {"minItems": 1}}}}}}},
            ],
            "examples": [EXAMPLE],
        },
    )

    version: Literal["1"] = Field(description="Schema version of this event")
    event: Literal["patient", "order", "result"]
    message_id: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=199)] = Field(
        description="Unique per sending_facility (MSH-10): the same event again under it is a duplicate; "
                    "another event under a used id is applied with the warning control_id_reused"
    )
    sending_facility: Text | None = Field(default=None, description="MSH-4; the default identifier system")
    sending_application: Text | None = None
    sent_at: Instant = Field(description="When the LIS produced the event (MSH-7): decides which data is newer")
    patient: JsonPatient | None = Field(default=None, description="Required for patient events; orders may omit it "
                                        "when their order number is already known")
    orders: list[JsonOrder] = Field(default_factory=list, max_length=100)

    @model_validator(mode="after")
    def _shape(self) -> LisEvent:
        if self.event == "patient" and self.patient is None:
            raise ValueError("a patient event needs patient")
        if self.event == "patient" and self.orders:
            raise ValueError("a patient event carries no orders (send an order or result event)")
        if self.event in ("order", "result") and not self.orders:
            raise ValueError(f"an {self.event} event needs at least one order")
        if self.event == "result" and not any(order.results for order in self.orders):
            raise ValueError("a result event needs at least one result")
        return self


_KIND = {"patient": ("ADT", "A08"), "order": ("ORM", "O01"), "result": ("ORU", "R01")}


def json_schema() -> dict[str, Any]:
    schema = LisEvent.model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


def schema_text() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"


def _code(code: JsonCode | None) -> CodedValue:
    if code is None:
        return CodedValue(code=None, display=None, system=None)
    return CodedValue(code=code.code or None, display=code.display or None, system=code.system or None)


def _result(result: JsonResult, index: int) -> ResultData:
    values = tuple(v for v in result.values if v)
    value_type = result.value_type.upper() if result.value_type else None
    value = "\n".join(values) if value_type in ("TX", "FT") else (values[0] if values else None)
    return ResultData(
        set_id=str(index + 1), code=_code(result.code), value_type=value_type, values=values, value=value,
        units=result.units or None, reference_range=result.reference_range or None,
        abnormal_flags=tuple(result.abnormal_flags), status=result.status, observed_at=result.observed_at,
        notes=tuple(result.notes),
    )


def _patient(patient: JsonPatient, fallback_system: str) -> PatientData:
    name = None
    if patient.name is not None:
        name = PersonName(family=patient.name.family, given=tuple(patient.name.given),
                          prefix=tuple(patient.name.prefix), suffix=tuple(patient.name.suffix))
    address = None
    if patient.address is not None:
        a = patient.address
        address = Address(line=tuple(a.line), city=a.city, state=a.state, postal_code=a.postal_code or None, country=a.country)
    return PatientData(
        identifiers=tuple(Identifier(value=i.value, system=i.system or fallback_system, type=i.type or None)
                          for i in patient.identifiers),
        name=name, birth_date=patient.birth_date, sex=patient.sex, address=address,
        phone=patient.phone or None, email=patient.email or None, invalid_fields=(),
    )


def to_message(event: LisEvent) -> Message:
    """The neutral model of this event, as if it had come as HL7."""
    message_type, trigger = _KIND[event.event]
    fallback_system = event.sending_facility or "LIS"
    header = Header(
        message_type=message_type, trigger_event=trigger, structure=None, control_id=event.message_id,
        sending_application=event.sending_application, sending_facility=event.sending_facility,
        receiving_facility=None, message_datetime=event.sent_at, processing_id=None, version=JSON_VERSION, charset=None,
    )
    orders = tuple(
        OrderData(
            placer_number=o.placer_number, filler_number=o.filler_number, control=o.control, code=_code(o.code),
            status=o.status, priority=o.priority, ordered_at=o.ordered_at,
            results=tuple(_result(r, i) for i, r in enumerate(o.results)), notes=tuple(o.notes),
        )
        for o in event.orders
    )
    patient = _patient(event.patient, fallback_system) if event.patient is not None else None
    return Message(header=header, groups=(PatientGroup(patient=patient, orders=orders),), segment_ids=())
