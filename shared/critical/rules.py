"""What makes a result critical, where its alert goes, and what each channel may say. Pure."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime

from shared.notify.render import Rendered
from shared.settings import AlertRoute, AlertTarget, CriticalRange

CRITICAL_FLAGS = ("HH", "LL", "AA")  # HL7 table 0078: critically high, critically low, critically abnormal


def numeric_value(value_type: str | None, value: str | None) -> float | None:
    """An NM result's value as a number (None for other types or a value that is not one)."""
    if value_type != "NM" or value is None:
        return None
    try:
        number = float(value.strip())
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def critical_reason(flags: Sequence[str], value_type: str | None, value: str | None, code: str | None,
                    ranges: Mapping[str, CriticalRange]) -> str | None:
    """A short code saying why the result is critical ("flag:HH", "range:low"), or None."""
    for flag in flags:
        if flag.strip().upper() in CRITICAL_FLAGS:
            return f"flag:{flag.strip().upper()}"
    limits = ranges.get(code or "")
    number = numeric_value(value_type, value)
    if limits is None or number is None:
        return None
    if limits.low is not None and number < limits.low:
        return "range:low"
    if limits.high is not None and number > limits.high:
        return "range:high"
    return None


def route_for(routes: Mapping[str, AlertRoute], facility: str | None, ward: str | None) -> tuple[str | None, AlertRoute | None]:
    """The most specific route: "<facility>/<ward>", then "<facility>", then "*"."""
    candidates = [f"{facility}/{ward}" if facility and ward else None, facility, "*"]
    for key in candidates:
        if key and key in routes:
            return key, routes[key]
    return None, None


def target_for(route: AlertRoute | None, level: str) -> AlertTarget | None:
    if route is None:
        return None
    return route if level == "alert" else route.escalate_to


def ward_from_hl7(raw: bytes | None) -> str | None:
    """PV1-3.1 (the assigned location's point of care: the ward) of an HL7 v2 message, if any."""
    if not raw or not raw.startswith(b"MSH") or len(raw) < 8:
        return None
    text = raw.decode("utf-8", errors="replace")
    field_sep, component_sep = text[3], text[4]
    for segment in text.replace("\n", "\r").split("\r"):
        if segment.startswith("PV1" + field_sep):
            fields = segment.split(field_sep)
            ward = fields[3].split(component_sep)[0].strip() if len(fields) > 3 else ""
            return ward[:100] or None
    return None


def alert_link(template: str | None, alert_id: object) -> str | None:
    return template.replace("{alert_id}", str(alert_id)) if template else None


def render(channel: str, level: str, *, alert_id: object, where: str, test: str, result: str, observed: datetime | None,
           minutes: int, link: str | None) -> Rendered:
    """The message for one channel. No patient name, birth date or identifier on any channel; the SMS
    (read on a lock screen, kept by carriers) carries neither the test nor the value: where, how
    urgent, and the link. The e-mail goes to a team address and says what the result is."""
    escalated = level == "escalation"
    opener = f"ESCALATED (not acknowledged in {minutes} min): critical" if escalated else "Critical"
    open_it = f"Open and acknowledge: {link}" if link else f"Acknowledge alert {alert_id}."
    if channel == "sms":
        text = f"{opener} lab result for a patient at {where}. {open_it}"
        return Rendered(subject=None, text=text[:300], html=None, language="en", kind="critical_alert")
    lines = [
        f"{opener} lab result for a patient at {where}.",
        "",
        f"Test: {test}",
        f"Result: {result}",
        f"Observed: {observed.isoformat() if observed else 'not stated'}",
        "",
        open_it,
        "" if escalated else f"If nobody acknowledges it within {minutes} minutes it is escalated.",
    ]
    subject = ("ESCALATED: " if escalated else "") + f"Critical lab result at {where}"
    return Rendered(subject=subject, text="\n".join(lines).rstrip() + "\n", html=None, language="en", kind="critical_alert")
