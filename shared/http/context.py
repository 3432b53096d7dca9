"""What a route handler gets: the request, the authenticated principal, and safe body/query parsing."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, TypeVar

from flask import Request, Response
from pydantic import BaseModel, ValidationError

from shared.auth import Principal
from shared.errors import (
    InvalidJson,
    PayloadTooLarge,
    PreconditionFailed,
    PreconditionRequired,
    UnsupportedMediaType,
    ValidationFailed,
)
from shared.http import inputs
from shared.http.routing import Route
from shared.settings import get_settings

M = TypeVar("M", bound=BaseModel)
# json.dumps(payload, default=str) builds an encoder per call; this is that encoder, built once.
_ENCODER = json.JSONEncoder(default=str)
_ETAG = re.compile(r'^\s*(?:W/)?"(\d{1,9})"\s*$')


def validation_errors(exc: ValidationError, location: str) -> list[dict[str, Any]]:
    """pydantic errors without the offending input (it can be patient data)."""
    errors = []
    for err in exc.errors(include_url=False, include_input=False, include_context=False):
        path = ".".join(str(p) for p in err["loc"])
        errors.append({"in": location, "field": path or "(body)", "message": err["msg"], "code": err["type"]})
    return errors


@dataclass
class RequestContext:
    request: Request
    route: Route
    principal: Principal
    request_id: str

    # -- body -------------------------------------------------------------------------------
    def raw_body(self) -> bytes:
        limit = get_settings().max_body_bytes
        length = self.request.content_length
        if length is not None and length > limit:
            raise PayloadTooLarge(f"Body exceeds {limit} bytes")
        try:
            data = self.request.stream.read(limit + 1)
        except inputs.BODY_READ_ERRORS:
            raise inputs.unreadable_body() from None
        if len(data) > limit:
            raise PayloadTooLarge(f"Body exceeds {limit} bytes")
        return data

    def json_body(self, model: type[M], *, content_types: tuple[str, ...] = ("application/json",)) -> M:
        data = self._body_of(content_types)
        # The stdlib parser is the strict one (it refuses NaN/Infinity, which pydantic's accepts), and
        # inputs.load_json bounds the depth and refuses text PostgreSQL cannot store.
        inputs.load_json(data)
        try:
            return model.model_validate_json(data)
        except ValidationError as exc:
            if any(err["type"] in ("json_invalid", "json_type") for err in exc.errors()):
                raise InvalidJson(inputs.NOT_JSON) from None
            raise ValidationFailed(validation_errors(exc, "body")) from None

    def json_value(self, *, content_types: tuple[str, ...] = ("application/json",)) -> Any:
        """The parsed JSON body without a model (JSON merge patch validates after merging)."""
        return inputs.load_json(self._body_of(content_types))

    def _body_of(self, content_types: tuple[str, ...]) -> bytes:
        """The body, when its media type is one of ``content_types`` (415 otherwise)."""
        mimetype = (self.request.mimetype or "").lower()
        if mimetype not in content_types:
            raise UnsupportedMediaType(f"Send Content-Type: {' or '.join(content_types)}")
        return self.raw_body()

    # -- query ------------------------------------------------------------------------------
    def query(self, model: type[M], *, ignore: frozenset[str] = frozenset()) -> M:
        """The query string as ``model``; parameters named in ``ignore`` are left out."""
        inputs.check_query(self.request.query_string)
        args: dict[str, Any] = {}
        for key in self.request.args:
            if key in ignore:
                continue
            values = self.request.args.getlist(key)
            args[key] = values[0] if len(values) == 1 else values
        try:
            return model.model_validate(args)
        except ValidationError as exc:
            raise ValidationFailed(validation_errors(exc, "query")) from None

    # -- conditional requests ----------------------------------------------------------------
    def if_match_version(self) -> int:
        header = self.request.headers.get("If-Match")
        if header is None:
            raise PreconditionRequired("Send If-Match with the ETag from your last GET")
        match = _ETAG.match(header)
        if not match:
            raise PreconditionFailed("If-Match is not an ETag this server issued")
        return int(match.group(1))


def etag(version: int) -> str:
    return f'W/"{version}"'


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    if isinstance(payload, BaseModel):
        body = payload.model_dump_json()
    else:
        body = _ENCODER.encode(payload)
    response = Response(body, status=status, mimetype="application/json")
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response
