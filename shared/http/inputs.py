"""What every api input must be before a model, a service or the database driver sees it.

Three rules hold for every query parameter and every JSON body, whatever the route:

* **Text is storable**: PostgreSQL text cannot hold NUL, and a lone surrogate (``\\ud800``) is not
  Unicode text and cannot be encoded as UTF-8. Either would fail inside the driver (and a failure
  while a statement is half sent can leave the connection out of step), so both are a 422 naming
  the parameter or body field.
* **Query strings are UTF-8**: a percent-encoded byte sequence that is not UTF-8 (``%ED%A0%80``, an
  encoded surrogate, or ``%FF``) is a 422 naming the parameter, not text that happens to contain
  ``%``.
* **JSON is shallow**: a body nested deeper than ``MAX_JSON_DEPTH`` arrays/objects is a 400 (the
  parser's own recursion limit would otherwise end the request with a 500).
* **A body whose framing is broken** (a malformed chunk, fewer bytes than ``Content-Length``) is a
  400, wherever it is read (``BODY_READ_ERRORS``); gunicorn then closes the connection.

Ranges of typed values (instants, big integers) are the schemas' job (``shared.schemas.common``);
``tests/unit/registry/test_input_bounds.py`` checks every route's models use them.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote_to_bytes

from gunicorn.http.errors import NoMoreData, ParseException
from werkzeug.exceptions import ClientDisconnected

from shared.errors import BadRequest, InvalidJson, ValidationFailed

MAX_JSON_DEPTH = 32
NOT_JSON = "The body is not valid UTF-8 JSON"
# What reading a request body raises when its framing is broken: the client's fault, not ours.
BODY_READ_ERRORS = (ParseException, NoMoreData, ClientDisconnected)


def unreadable_body() -> BadRequest:
    return BadRequest("The request body's framing is not valid HTTP/1.1 (chunks or Content-Length)")


def text_problem(text: str) -> str | None:
    """Why ``text`` cannot be stored, or None when it can."""
    if "\x00" in text:
        return "must not contain NUL (U+0000)"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "must not contain a lone surrogate (not Unicode text)"
    return None


def _error(where: str, field: str, message: str, code: str) -> dict[str, str]:
    return {"in": where, "field": field, "message": message, "code": code}


def check_query(query_string: bytes) -> None:
    """422 for a parameter whose name or value is not UTF-8 or not storable text."""
    errors = []
    for pair in query_string.split(b"&"):
        if not pair:
            continue
        raw_name, _, raw_value = pair.partition(b"=")
        name, name_ok = _decode(raw_name)
        value, value_ok = _decode(raw_value)
        field = name if name_ok and text_problem(name) is None else "(parameter name)"
        if not (name_ok and value_ok):
            errors.append(_error("query", field, "must be percent-encoded UTF-8", "invalid_utf8"))
            continue
        problem = text_problem(name) or text_problem(value)
        if problem:
            errors.append(_error("query", field, problem, "unstorable_text"))
    if errors:
        raise ValidationFailed(errors)


def _decode(raw: bytes) -> tuple[str, bool]:
    try:
        return unquote_to_bytes(raw.replace(b"+", b" ")).decode("utf-8"), True
    except UnicodeDecodeError:
        return "", False


def load_json(data: bytes) -> Any:
    """The parsed body: strict JSON (no NaN/Infinity), at most ``MAX_JSON_DEPTH`` deep, storable text."""
    try:
        value = json.loads(data.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise InvalidJson(NOT_JSON) from None
    _check_value(value)
    return value


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _check_value(value: Any) -> None:
    """Depth and text of a parsed JSON value, without recursion (the value may be deep)."""
    errors = []
    stack: list[tuple[Any, tuple[str, ...], int]] = [(value, (), 0)]
    while stack:
        item, path, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth >= MAX_JSON_DEPTH:
                raise InvalidJson(f"The body is nested deeper than {MAX_JSON_DEPTH} levels")
            pairs = item.items() if isinstance(item, dict) else enumerate(item)
            for key, child in pairs:
                if isinstance(key, str) and (problem := text_problem(key)):
                    errors.append(_error("body", _field(path) + " (member name)", problem, "unstorable_text"))
                    continue
                stack.append((child, (*path, str(key)), depth + 1))
        elif isinstance(item, str) and (problem := text_problem(item)):
            errors.append(_error("body", _field(path), problem, "unstorable_text"))
    if errors:
        raise ValidationFailed(sorted(errors, key=lambda e: e["field"]))


def _field(path: tuple[str, ...]) -> str:
    return ".".join(path) or "(body)"
