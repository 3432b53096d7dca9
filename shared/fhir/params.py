"""FHIR query parameters: the models (route table / OpenAPI) and their parsing.

FHIR names (``_count``, ``birthdate``) are the aliases; a parameter or modifier we do not
implement (``name:exact``, ``_sort``) is a 400 naming it, never silently ignored, and so is a
repeated parameter other than ``birthdate`` (two bounds). Errors are ``BadRequest`` with the
field list, which the OperationOutcome renderer turns into one issue each.
"""

from __future__ import annotations

import re
import uuid
from calendar import monthrange
from datetime import date, timedelta
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, Field, field_validator

from shared.errors import BadRequest, ValidationFailed
from shared.fhir.outcome import NotAcceptable
from shared.http.context import RequestContext
from shared.schemas.common import MAX_BIGINT, QueryModel, text

M = TypeVar("M", bound=BaseModel)
MAX_COUNT = 100
DEFAULT_COUNT = 20
JSON_FORMATS = {"json", "application/json", "application/fhir+json", "application/json+fhir"}
XML_FORMATS = {"xml", "text/xml", "application/xml", "application/fhir+xml", "application/xml+fhir"}

_Format = text(64)
_Cursor = text(200)
_Token = text(401)


class FormatQuery(QueryModel):
    format: _Format | None = Field(default=None, alias="_format", description="json (the only format served).")  # type: ignore[valid-type]


class MetadataQuery(FormatQuery):
    mode: Literal["full"] | None = Field(default=None, description="Only the full statement is served.")


class PageQuery(FormatQuery):
    count: int = Field(default=DEFAULT_COUNT, ge=1, le=MAX_BIGINT, alias="_count",
                       description=f"Page size; above {MAX_COUNT} the server returns {MAX_COUNT}.")
    cursor: _Cursor | None = Field(default=None, alias="_cursor",  # type: ignore[valid-type]
                                   description="Opaque: follow the Bundle's `next` link rather than building it.")

    def page_size(self) -> int:
        return min(self.count, MAX_COUNT)


class PatientSearchParams(PageQuery):
    name: text(200) | None = Field(default=None, description="Each word is a prefix of a word of any name part (case and accents ignored).")  # type: ignore[valid-type]
    family: text(200) | None = Field(default=None, description="Each word is a prefix of a word of the family name.")  # type: ignore[valid-type]
    given: text(200) | None = Field(default=None, description="Each word is a prefix of a word of a given name.")  # type: ignore[valid-type]
    birthdate: str | list[str] | None = Field(
        default=None, description="YYYY, YYYY-MM or YYYY-MM-DD with an optional prefix eq, lt, le, gt, ge; "
        "repeat once for a range (birthdate=ge1970&birthdate=lt1980).")
    gender: Literal["male", "female", "other", "unknown"] | None = None
    identifier: _Token | None = Field(default=None, description="system|value, or value in any system.")  # type: ignore[valid-type]

    @field_validator("birthdate")
    @classmethod
    def _two_at_most(cls, value: str | list[str] | None) -> list[str] | None:
        if value is None:
            return None
        values = [value] if isinstance(value, str) else value
        if len(values) > 2:
            raise ValueError("give at most two birthdate bounds")
        return values


class ServiceRequestSearchParams(PageQuery):
    patient: _Token = Field(description="Required: the patient's id, as `<id>` or `Patient/<id>`.")  # type: ignore[valid-type]


class ObservationSearchParams(PageQuery):
    patient: _Token = Field(description="Required: the patient's id, as `<id>` or `Patient/<id>`.")  # type: ignore[valid-type]
    code: text(2000) | None = Field(default=None, description="system|code or code; comma-separated for any of several.")  # type: ignore[valid-type]


def parse_query(ctx: RequestContext, model: type[M]) -> M:
    """The query as ``model``, after content negotiation; a failure is a 400 (FHIR search errors)."""
    try:
        q = ctx.query(model)
    except ValidationFailed as exc:
        errors = [_friendlier(e) for e in exc.errors]
        raise BadRequest(f"{len(errors)} search parameter(s) are not supported or not valid", errors=errors) from None
    negotiate(ctx, getattr(q, "format", None))
    return q


def _friendlier(err: dict[str, Any]) -> dict[str, Any]:
    if err.get("code") == "extra_forbidden":
        return {**err, "message": "is not a parameter this server supports here (see GET /fhir/metadata)"}
    return err


def negotiate(ctx: RequestContext, fmt: str | None) -> None:
    """JSON only: ``_format`` or ``Accept`` asking for something else is a 406. Accept's media-type
    parameters are honoured: ``fhirVersion`` must be 4.0 (R4), ``charset`` utf-8."""
    if fmt is not None:
        if fmt.lower() in XML_FORMATS:
            raise NotAcceptable("This server serves FHIR JSON only (_format=json)")
        if fmt.lower() not in JSON_FORMATS:
            raise BadRequest("_format must be json", errors=[
                {"in": "query", "field": "_format", "message": "use json", "code": "unsupported"}])
        return
    header = ctx.request.headers.get("Accept")
    if header and not any(_acceptable(r) for r in header.split(",")):
        raise NotAcceptable("This server serves application/fhir+json (fhirVersion=4.0, charset utf-8) only")


def fhir_version_ok(params: dict[str, str]) -> bool:
    """A media type's ``fhirVersion`` parameter, when present, names R4 (4.0 or 4.0.x)."""
    version = next((v for k, v in params.items() if k.lower() == "fhirversion"), None)
    return version is None or version.strip().strip('"') == "4.0" or version.strip().strip('"').startswith("4.0.")


def _acceptable(media_range: str) -> bool:
    kind, _, rest = media_range.partition(";")
    params: dict[str, str] = {}
    for piece in rest.split(";"):
        name, sep, value = piece.partition("=")
        if sep:
            params[name.strip().lower()] = value.strip().strip('"')
    try:
        if float(params.pop("q", "1")) <= 0:
            return False
    except ValueError:
        return False
    kind = kind.strip().lower()
    if kind not in {"*/*", "application/*"} | (JSON_FORMATS - {"json"}):
        return False
    charset = params.get("charset")
    return fhir_version_ok(params) and (charset is None or charset.lower() in {"utf-8", "utf8"})


def bad_param(field: str, message: str) -> BadRequest:
    return BadRequest(f"Search parameter {field} is not valid",
                      errors=[{"in": "query", "field": field, "message": message, "code": "invalid"}])


# --- token and reference values -----------------------------------------------------------------

def split_escaped(value: str, sep: str, *, unescape: bool = True) -> list[str]:
    """Split a FHIR search value on unescaped ``sep``; ``\\,`` ``\\|`` ``\\$`` ``\\\\`` unescape
    (or stay escaped with ``unescape=False``, for a second split on another separator)."""
    parts, current, chars = [], [], iter(value)
    for ch in chars:
        if ch == "\\":
            escaped = next(chars, "")
            current.append(escaped if unescape else ch + escaped)
        elif ch == sep:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts


def token(value: str, field: str) -> tuple[str | None, str]:
    """``system|code`` → (system, code); ``code`` → (None, code). ``|code`` and ``system|`` are refused:
    every stored identifier and code here has a system, and a bare system is not a search here."""
    pieces = split_escaped(value, "|")
    if len(pieces) == 1:
        code = pieces[0].strip()
        if code:
            return None, code
    elif len(pieces) == 2 and pieces[0].strip() and pieces[1].strip():
        return pieces[0].strip(), pieces[1].strip()
    raise bad_param(field, "use system|value, or value alone")


def patient_reference(value: str) -> uuid.UUID:
    ref = value.strip().rstrip("/")
    if "/" in ref:
        kind, _, ref = ref.rpartition("/")
        if not (kind == "Patient" or kind.endswith("/Patient")):
            raise bad_param("patient", "give the patient's id, or Patient/<id>")
    try:
        return uuid.UUID(ref)
    except ValueError:
        raise bad_param("patient", "is not a patient id of this server") from None


# --- birthdate ----------------------------------------------------------------------------------

_DATE = re.compile(r"^(eq|lt|le|gt|ge)?(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")


def _period(year: int, month: int | None, day: int | None) -> tuple[date, date | None]:
    """[first day, day after the last day) of a FHIR partial date; the end is None when the period
    runs to the end of the calendar (9999-12-31: no day after it exists to compare with)."""
    if day is not None:
        start = last = date(year, month or 1, day)
    elif month is not None:
        start, last = date(year, month, 1), date(year, month, monthrange(year, month)[1])
    else:
        start, last = date(year, 1, 1), date(year, 12, 31)
    return start, (last + timedelta(days=1) if last < date.max else None)


def birthdate_bounds(values: list[str]) -> tuple[date | None, date | None]:
    """The half-open range [low, high) of birth dates the ``birthdate`` parameters select (None:
    unbounded on that side). A range nothing can fall in (``gt9999-12-31``, or bounds that cross)
    comes back with ``low >= high``, which selects no row."""
    low: date | None = None
    high: date | None = None
    for raw in values:
        m = _DATE.match(raw.strip())
        if not m:
            raise bad_param("birthdate", "use YYYY, YYYY-MM or YYYY-MM-DD, optionally prefixed eq, lt, le, gt or ge")
        prefix = m.group(1) or "eq"
        try:
            start, end = _period(int(m.group(2)), int(m.group(3)) if m.group(3) else None,
                                 int(m.group(4)) if m.group(4) else None)
        except ValueError:
            raise bad_param("birthdate", "is not a calendar date") from None
        if prefix == "gt" and end is None:
            lo, hi = date.max, date.max  # after the last day of the calendar: nothing
        else:
            lo, hi = {"eq": (start, end), "ge": (start, None), "gt": (end, None),
                      "lt": (None, start), "le": (None, end)}[prefix]
        if lo is not None:
            low = lo if low is None else max(low, lo)
        if hi is not None:
            high = hi if high is None else min(high, hi)
    return low, high
