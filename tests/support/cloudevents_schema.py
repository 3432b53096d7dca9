"""Validate emitted CloudEvents: the CloudEvents v1.0 JSON Schema (a verbatim copy under
tests/fixtures/cloudevents) and the catalog's JSON Schema its ``dataschema`` names (docs/events/schemas)."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema

ROOT = Path(__file__).resolve().parents[2]
CLOUDEVENTS_SCHEMA = ROOT / "tests" / "fixtures" / "cloudevents" / "cloudevents.schema.json"
SCHEMAS_DIR = ROOT / "docs" / "events" / "schemas"


@lru_cache(maxsize=1)
def _envelope_validator() -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(json.loads(CLOUDEVENTS_SCHEMA.read_text()), format_checker=jsonschema.FormatChecker())


@lru_cache(maxsize=64)
def _data_validator(path: Path) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json.loads(path.read_text()), format_checker=jsonschema.FormatChecker())


def schema_file_for(dataschema: str) -> Path:
    """``<SCHEMA_BASE_URL><type>.json`` -> ``docs/events/schemas/<type>.json``."""
    from shared.events.catalog import SCHEMA_BASE_URL  # noqa: PLC0415

    assert dataschema.startswith(SCHEMA_BASE_URL), dataschema
    path = SCHEMAS_DIR / dataschema.removeprefix(SCHEMA_BASE_URL)
    assert path.is_file(), f"dataschema {dataschema} has no file {path}"
    return path


def validate_event(structured: dict[str, Any]) -> None:
    """Raise jsonschema.ValidationError unless the event (CloudEvents JSON format) is valid and its data
    matches the schema its dataschema points to."""
    _envelope_validator().validate(structured)
    _data_validator(schema_file_for(structured["dataschema"])).validate(structured["data"])


def structured_from_http(headers: dict[str, str], body: bytes) -> dict[str, Any]:
    """A binary-mode HTTP CloudEvent as received, in the JSON format."""
    from urllib.parse import unquote  # noqa: PLC0415

    lower = {k.lower(): v for k, v in headers.items()}
    event: dict[str, Any] = {k[3:]: unquote(v) for k, v in lower.items() if k.startswith("ce-")}
    event["datacontenttype"] = lower["content-type"]
    event["data"] = json.loads(body)
    return event


def structured_from_pubsub(attributes: dict[str, str], data: bytes) -> dict[str, Any]:
    """A binary-mode Pub/Sub CloudEvent as received, in the JSON format."""
    event: dict[str, Any] = {k[3:]: v for k, v in attributes.items() if k.startswith("ce-")}
    event["datacontenttype"] = attributes["content-type"]
    event["data"] = json.loads(data)
    return event
