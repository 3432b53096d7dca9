"""JSON merge patch (RFC 7396): members replace, ``null`` removes, objects merge recursively,
arrays are replaced whole."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from shared.errors import ValidationFailed

M = TypeVar("M", bound=BaseModel)


def apply_merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = apply_merge_patch(result.get(key), value)
    return result


def changed_members(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Top-level member names whose value differs (never the values)."""
    return sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))


def validate_patched(model: type[M], document: dict[str, Any]) -> M:
    """Validate the patched document as JSON (strict types, as a request body would be); the
    errors name fields, never the offending values."""
    try:
        return model.model_validate_json(json.dumps(document))
    except ValidationError as exc:
        errors = [
            {"in": "body", "field": ".".join(str(p) for p in err["loc"]) or "(body)", "message": err["msg"], "code": err["type"]}
            for err in exc.errors(include_url=False, include_input=False, include_context=False)
        ]
        raise ValidationFailed(errors, "The patched resource failed validation") from None
