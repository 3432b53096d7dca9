"""A time the LIS sent in HL7 v2 (a DTM: ``YYYY[MM[DD[HHMM[SS[.S]]]]][+/-ZZZZ]``) as a FHIR dateTime,
at the precision it was sent with.

FHIR R4's dateTime is ``YYYY``, ``YYYY-MM``, ``YYYY-MM-DD``, or a time with seconds and an offset
("if hours and minutes are specified, a time zone SHALL be populated"; seconds may be zero-filled).
So a date-only ``20260101`` stays the date ``2026-01-01`` — no time, no offset; a year or a month
stays a year or a month; a time keeps its offset as sent. A minute-precision time gets ``:00``
seconds, which FHIR requires; the precision sent stays in ``lab_results.observed_text``.

A time sent without an offset is the sender's local time, which the message does not say; the HL7
layer reads it as UTC (``shared/hl7/timestamps.py``), the instant stored is that reading, and FHIR
— which requires an offset on a time — gets ``+00:00`` for it (docs/fhir.md, "Times").
"""

from __future__ import annotations

import re
from datetime import datetime

_DTM = re.compile(
    r"(?P<Y>[0-9]{4})(?:(?P<m>[0-9]{2})(?:(?P<d>[0-9]{2})"
    r"(?:(?P<H>[0-9]{2})(?:(?P<M>[0-9]{2})(?:(?P<S>[0-9]{2})(?:\.(?P<f>[0-9]{1,6}))?)?)?)?)?)?"
    r"(?P<z>[+-][0-9]{4})?",
    re.ASCII,
)


def date_time(instant: datetime | None, hl7_text: str | None) -> str | None:
    """``instant`` (what was stored) as a FHIR dateTime at the precision of ``hl7_text`` (as sent;
    None for a time that did not come from HL7 v2, which is exact)."""
    if instant is None:
        return None
    match = _DTM.fullmatch(hl7_text.strip()) if hl7_text else None
    if match is None:
        return instant.isoformat()
    if match["d"] is None:
        return match["Y"] + (f"-{match['m']}" if match["m"] else "")
    if match["H"] is None:
        return f"{match['Y']}-{match['m']}-{match['d']}"
    # Written from the text itself (the instant, read back from PostgreSQL, is in UTC and has lost
    # the offset sent): only what FHIR requires is added — zero seconds, and +00:00 for no offset.
    seconds = (match["S"] or "00") + (f".{match['f']}" if match["f"] else "")
    z = match["z"]
    offset = f"{z[:3]}:{z[3:]}" if z else "+00:00"
    return f"{match['Y']}-{match['m']}-{match['d']}T{match['H']}:{match['M'] or '00'}:{seconds}{offset}"
