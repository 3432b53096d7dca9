"""FHIR query parameters: the models (route table / OpenAPI) and their parsing.

FHIR names (``_count``, ``birthdate``) are the aliases; a parameter or modifier we do not
implement (``name:exact``) is a 400 naming it, never silently ignored. Search values may be
repeated (AND) and comma-separated (OR): ``shared.fhir.search``. Errors are ``BadRequest`` with
the field list, which the OperationOutcome renderer turns into one issue each.
"""

from __future__ import annotations

import re
from calendar import monthrange
from datetime import date, timedelta
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, Field, PrivateAttr

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
    count: int = Field(default=DEFAULT_COUNT, ge=0, le=MAX_BIGINT, alias="_count",
                       description=f"Page size; above {MAX_COUNT} the server returns {MAX_COUNT}; 0 answers the total only.")
    cursor: _Cursor | None = Field(default=None, alias="_cursor",  # type: ignore[valid-type]
                                   description="Opaque: follow the Bundle's `next` link rather than building it.")

    def page_size(self) -> int:
        return min(self.count, MAX_COUNT)


_Value = text(2000)
# A search value: a list when the parameter is repeated (AND); commas inside a value are OR.
Multi = _Value | list[_Value] | None  # type: ignore[valid-type]
_LIST = " Comma-separated values: any of them; repeat the parameter for all of them."


class SearchQuery(PageQuery):
    """What every search takes besides its own parameters."""
    id: Multi = Field(default=None, alias="_id", description="Resource id." + _LIST)
    last_updated: Multi = Field(default=None, alias="_lastUpdated",
                                description="When the resource last changed: a date or dateTime with a prefix "
                                "(eq, ne, lt, le, gt, ge, sa, eb); repeat for a range.")
    sort: text(100) | None = Field(default=None, alias="_sort",  # type: ignore[valid-type]
                                   description="One key, `-` for descending (see each resource's keys).")
    total: Literal["none", "estimate", "accurate"] | None = Field(
        default=None, alias="_total", description="`none` leaves Bundle.total out; otherwise it is exact.")
    summary: Literal["count"] | None = Field(default=None, alias="_summary",
                                             description="`count`: the total only, no entries.")
    include: Multi = Field(default=None, alias="_include",
                           description="Add the resources a reference points at (see each resource's list).")
    elements: Multi = Field(default=None, alias="_elements",
                            description="Comma-separated top-level elements to return (id, meta and resourceType always are).")
    # Parameters ignored under Prefer: handling=lenient (said so in an OperationOutcome entry).
    _ignored: list[str] = PrivateAttr(default_factory=list)

    def ignored(self) -> list[str]:
        return list(self._ignored)

    def totals(self) -> bool:
        return self.total != "none" or self.summary == "count"

    def size(self) -> int:
        return 0 if self.summary == "count" else self.page_size()


class PatientSearchParams(SearchQuery):
    name: Multi = Field(default=None, description="Each word is a prefix of a word of any name part (case and accents ignored)." + _LIST)
    family: Multi = Field(default=None, description="Each word is a prefix of a word of the family name." + _LIST)
    given: Multi = Field(default=None, description="Each word is a prefix of a word of a given name." + _LIST)
    birthdate: Multi = Field(
        default=None, description="YYYY, YYYY-MM or YYYY-MM-DD with an optional prefix eq, lt, le, gt, ge; "
        "repeat for a range (birthdate=ge1970&birthdate=lt1980)." + _LIST)
    gender: Multi = Field(default=None, description="male | female | other | unknown." + _LIST)
    identifier: Multi = Field(default=None, description="system|value, value, or system|." + _LIST)
    revinclude: Multi = Field(default=None, alias="_revinclude",
                              description="Observation:patient adds the patients' results (at most 1000, newest first).")


class ServiceRequestSearchParams(SearchQuery):
    patient: Multi = Field(default=None, description="The patient's id, as `<id>` or `Patient/<id>`." + _LIST)
    subject: Multi = Field(default=None, description="As patient: `Patient/<id>`." + _LIST)


class ObservationSearchParams(SearchQuery):
    patient: Multi = Field(default=None, description="The patient's id, as `<id>` or `Patient/<id>`." + _LIST)
    subject: Multi = Field(default=None, description="As patient: `Patient/<id>`." + _LIST)
    code: Multi = Field(default=None, description="system|code, code, system| or |code." + _LIST)
    date: Multi = Field(default=None, description="The effective time, with a prefix (eq, ne, lt, le, gt, ge, sa, eb); "
                        "repeat for a range." + _LIST)
    category: Multi = Field(default=None, description="laboratory (every result here)." + _LIST)
    status: Multi = Field(default=None, description="registered | preliminary | final | amended | corrected | "
                          "cancelled | entered-in-error | unknown." + _LIST)


class DiagnosticReportSearchParams(ObservationSearchParams):
    """As Observation's: ``code`` is the order's, ``date`` the earliest effective time of its results."""
    category: Multi = Field(default=None, description="LAB (HL7 v2 table 0074; every report here)." + _LIST)
    status: Multi = Field(default=None, description="registered | partial | preliminary | final | corrected | "
                          "cancelled | unknown." + _LIST)


def lenient(ctx: RequestContext) -> bool:
    """``Prefer: handling=lenient``: unknown parameters are ignored (and said so); strict is the default."""
    return any(p.strip().replace(" ", "") == "handling=lenient" for p in ctx.request.headers.get("Prefer", "").split(";"))


def unknown_parameters(ctx: RequestContext, model: type[BaseModel]) -> list[str]:
    known = {f.alias or name for name, f in model.model_fields.items()}
    return sorted(k for k in ctx.request.args if k not in known)


def parse_query(ctx: RequestContext, model: type[M]) -> M:
    """The query as ``model``, after content negotiation; a failure is a 400 (FHIR search errors).
    Under ``Prefer: handling=lenient`` unknown parameters are left out; ``ignored_parameters`` names them."""
    ignored = unknown_parameters(ctx, model) if lenient(ctx) else []
    try:
        q = ctx.query(model, ignore=frozenset(ignored))
    except ValidationFailed as exc:
        errors = [_friendlier(e) for e in exc.errors]
        raise BadRequest(f"{len(errors)} search parameter(s) are not supported or not valid", errors=errors) from None
    negotiate(ctx, getattr(q, "format", None))
    if isinstance(q, SearchQuery):
        q._ignored = ignored
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


class ExportQuery(FormatQuery):
    """The Bulk Data kick-off (``$export``)."""
    type: Multi = Field(default=None, alias="_type", description="Comma-separated resource types to export "
                        "(Patient, ServiceRequest, Observation, DiagnosticReport); all when absent.")
    since: _Value | None = Field(default=None, alias="_since",  # type: ignore[valid-type]
                                 description="An instant: only resources changed after it.")
    output_format: _Format | None = Field(default=None, alias="_outputFormat",  # type: ignore[valid-type]
                                          description="application/fhir+ndjson (the only format written).")
