"""Every instrument of the project, declared once, bound to an OpenTelemetry meter on demand.

Until ``shared.telemetry.setup`` binds them, ``add``/``record`` is one attribute check: with no
exporter configured, recording costs nothing measurable and OpenTelemetry is never imported.
Attribute values come from ``shared.telemetry.labels`` (bounded sets, never patient data).
``docs/operations.md`` says what each one means and which alerts to build on them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

Attributes = Mapping[str, str] | None

# Seconds. The HTTP buckets are OpenTelemetry's recommendation for http.server.request.duration.
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
LAG_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400)
JOB_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900)


class Instrument:
    __slots__ = ("name", "unit", "description", "_impl")

    def __init__(self, name: str, unit: str, description: str) -> None:
        self.name = name
        self.unit = unit
        self.description = description
        self._impl: Any = None

    def create(self, meter: Any) -> Any:
        raise NotImplementedError


class Counter(Instrument):
    __slots__ = ()

    def add(self, amount: int = 1, attributes: Attributes = None) -> None:
        impl = self._impl
        if impl is not None:
            impl.add(amount, attributes)

    def create(self, meter: Any) -> Any:
        return meter.create_counter(self.name, self.unit, self.description)


class Histogram(Instrument):
    __slots__ = ("buckets",)

    def __init__(self, name: str, unit: str, description: str, buckets: Sequence[float]) -> None:
        super().__init__(name, unit, description)
        self.buckets = tuple(float(b) for b in buckets)

    def record(self, value: float, attributes: Attributes = None) -> None:
        impl = self._impl
        if impl is not None:
            impl.record(value, attributes)

    def create(self, meter: Any) -> Any:
        return meter.create_histogram(self.name, self.unit, self.description,
                                      explicit_bucket_boundaries_advisory=list(self.buckets))


INSTRUMENTS: list[Instrument] = []


def _declare(instrument: Any) -> Any:
    INSTRUMENTS.append(instrument)
    return instrument


# -- api -------------------------------------------------------------------------------------------
HTTP_DURATION: Histogram = _declare(Histogram(
    "http.server.request.duration", "s",
    "Duration of api requests by route template, method and status class (its count is the request count).",
    HTTP_BUCKETS))
REGISTRATIONS_ATTEMPTED: Counter = _declare(Counter(
    "patient_mgt.registrations.attempted", "{registration}", "POST /patients requests that reached the handler."))
REGISTRATIONS_SUCCEEDED: Counter = _declare(Counter(
    "patient_mgt.registrations.succeeded", "{registration}", "Patients registered through the api (201)."))
REGISTRATIONS_REJECTED: Counter = _declare(Counter(
    "patient_mgt.registrations.rejected", "{registration}",
    "Registrations refused, by reason: validation, duplicate, conflict, unavailable, error."))

# -- consumers -------------------------------------------------------------------------------------
EVENT_DURATION: Histogram = _declare(Histogram(
    "patient_mgt.events.process.duration", "s",
    "CloudEvent deliveries handled by a consumer, by consumer, event type and answer's status class.",
    HTTP_BUCKETS))
LIS_MESSAGES: Counter = _declare(Counter(
    "patient_mgt.lis.messages", "{message}", "LIS messages by HL7 message type and outcome (lis_messages.status)."))
LIS_WARNINGS: Counter = _declare(Counter(
    "patient_mgt.lis.warnings", "{message}",
    "LIS messages committed with a warning an operator must look at, by HL7 message type and warning code "
    "(control_id_reused)."))
LIS_LAG: Histogram = _declare(Histogram(
    "patient_mgt.lis.lag", "s", "Processed-at minus MSH-7 of each LIS message applied (status processed).",
    LAG_BUCKETS))
NOTIFICATIONS: Counter = _declare(Counter(
    "patient_mgt.notifications", "{notification}", "Notification outcomes by channel, status and kind."))
JOB_RUNS: Counter = _declare(Counter("patient_mgt.job.runs", "{run}", "Job runs by job and final status."))
JOB_DURATION: Histogram = _declare(Histogram(
    "patient_mgt.job.run.duration", "s", "Wall time of job runs by job and final status.", JOB_BUCKETS))


def bind(meter: Any) -> None:
    for instrument in INSTRUMENTS:
        instrument._impl = instrument.create(meter)


def unbind() -> None:
    for instrument in INSTRUMENTS:
        instrument._impl = None


def enabled() -> bool:
    """True when metrics are being recorded (work done only to feed a metric can check this)."""
    return HTTP_DURATION._impl is not None
