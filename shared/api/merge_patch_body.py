"""Reading a JSON merge patch body (RFC 7396) for PATCH routes."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ValidationError

from shared.errors import ValidationFailed
from shared.http.context import RequestContext, validation_errors
from shared.schemas.patients import read_only_errors

MERGE_PATCH = "application/merge-patch+json"
CONTENT_TYPES = (MERGE_PATCH, "application/json")


def merge_patch_body(ctx: RequestContext, model: type[BaseModel], read_only: dict[str, str]) -> dict[str, Any]:
    """The patch as a dict holding only the members the client sent (``null`` kept: it removes).

    Server-managed members get a precise ``read_only`` error each; everything else is checked
    against ``model`` (unknown members, types, formats) before the service merges it.
    """
    raw = ctx.json_value(content_types=CONTENT_TYPES)
    if not isinstance(raw, dict):
        raise ValidationFailed([{"in": "body", "field": "(body)", "message": "a merge patch must be a JSON object",
                                 "code": "object_type"}])
    errors: list[dict[str, Any]] = read_only_errors(raw, read_only)
    rest = {k: v for k, v in raw.items() if k not in read_only}
    patch = None
    try:
        patch = model.model_validate_json(json.dumps(rest))
    except ValidationError as exc:
        errors.extend(validation_errors(exc, "body"))
    if errors or patch is None:
        raise ValidationFailed(errors)
    return patch.model_dump(mode="json", exclude_unset=True)
