"""Payload bytes -> the messages in it (`Part`s), each parsed or carrying why it cannot be.

Pure (no database). The format is the one the envelope declared, else sniffed: a payload that
starts with ``{`` is the JSON LIS event, anything else HL7 v2 ER7. An HL7 payload may hold a
batch (FHS/BHS, several MSH): each message becomes its own part, stored and deduplicated on its
own (MSH-4, MSH-10, content digest).

Each parsed part carries the digest of its content (`digest`): the same message sent again — with
other segment terminators, MLLP framing or batch envelope — has the same digest, which is what
tells a duplicate from a different message under a reused control id.

Outcomes per part: a parsed `Message`; or ``quarantine`` (content that can never succeed, with
a PHI-free reason code); or ``crash`` (the parser itself raised something other than HL7Error —
a bug: the part is stored as ``failed`` and can be replayed once the parser is fixed).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import datetime

from shared.hl7 import HL7Error, Message, parse_message, split_messages
from shared.hl7 import content_digest as hl7_digest
from shared.hl7.model import Header
from shared.lis.values import safe_text

_LEADING_NOISE = b"\xef\xbb\xbf\x0b\x1c\r\n\t "
_MAX_WARNINGS = 20


@dataclass(frozen=True, slots=True)
class Peek:
    """Best-effort MSH fields of content that did not parse, for the operator view only."""

    message_type: str | None = None
    control_id: str | None = None
    sending_application: str | None = None
    sending_facility: str | None = None


@dataclass(frozen=True, slots=True)
class Part:
    raw: bytes
    content_format: str  # hl7v2 | json
    message: Message | None = None
    quarantine: str | None = None
    crash: str | None = None  # exception type name of a parser bug
    peek: Peek = field(default_factory=Peek)
    warnings: tuple[str, ...] = ()
    digest: str | None = None  # SHA-256 of the normalised content (set when `message` is)


def sniff(payload: bytes) -> str:
    return "json" if payload.lstrip(_LEADING_NOISE)[:1] == b"{" else "hl7v2"


def read_parts(payload: bytes, declared_format: str | None) -> list[Part]:
    fmt = declared_format or sniff(payload)
    if fmt == "json":
        return [_json_part(payload)]
    try:
        messages = split_messages(payload)
    except HL7Error as exc:
        return [Part(raw=payload, content_format="hl7v2", quarantine=exc.reason, peek=peek(payload))]
    except Exception as exc:  # noqa: BLE001 — a parser bug: stored as failed, replayable after a fix
        return [Part(raw=payload, content_format="hl7v2", crash=type(exc).__name__, peek=peek(payload))]
    if not messages:
        return [Part(raw=payload, content_format="hl7v2", quarantine="no_msh", peek=peek(payload))]
    if len(messages) == 1:
        return [hl7_part(payload, messages)]  # keep the delivered bytes exactly (framing, BOM, envelope)
    return [hl7_part(raw) for raw in messages]


def hl7_part(raw: bytes, messages: list[bytes] | None = None) -> Part:
    """`raw` parsed (`messages`: ``split_messages(raw)``, when the caller split it already: parsing
    and the digest then reuse it rather than split the message twice more)."""
    try:
        message = parse_message(raw, messages)
    except HL7Error as exc:
        return Part(raw=raw, content_format="hl7v2", quarantine=exc.reason, peek=peek(raw))
    except Exception as exc:  # noqa: BLE001 — a parser bug: stored as failed, replayable after a fix
        return Part(raw=raw, content_format="hl7v2", crash=type(exc).__name__, peek=peek(raw))
    # A NUL was dropped from these fields (the value is kept without it): the row says where.
    warnings = tuple(f"nul_removed:{name}" for name in message.nul_fields[:_MAX_WARNINGS])
    return Part(raw=raw, content_format="hl7v2", message=message, warnings=warnings, digest=hl7_digest(raw, messages))


def _json_part(payload: bytes) -> Part:
    # The JSON event schema (a pydantic model, ~20 ms to build) loads with the first JSON event: an HL7
    # feed never needs it.
    from pydantic import ValidationError  # noqa: PLC0415

    from shared.lis.json_event import OUT_OF_RANGE, LisEvent, to_message  # noqa: PLC0415

    try:
        text = payload.decode("utf-8-sig")
        body = json.loads(text, parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return Part(raw=payload, content_format="json", quarantine="invalid_json")
    nul_paths: list[str] = []
    cleaned = _without_nul(body, "", nul_paths)
    try:
        event = LisEvent.model_validate_json(json.dumps(cleaned) if nul_paths else text)
    except ValidationError as exc:
        # Field paths only (never the offending values: they can be patient data).
        problems = sorted({(OUT_OF_RANGE if err["type"] == OUT_OF_RANGE else "invalid", _path(err))
                           for err in exc.errors(include_input=False)})
        warnings = tuple(safe_text(f"{kind}:{p}")[:200] for kind, p in problems[:_MAX_WARNINGS])
        # Only timestamps out of range: the reason names the first (as out_of_range:<SEG-n> does for HL7).
        reason = warnings[0] if all(kind == OUT_OF_RANGE for kind, _ in problems) else "invalid_json_event"
        return Part(raw=payload, content_format="json", quarantine=reason, warnings=warnings, peek=_json_peek(text))
    # A NUL was removed from these strings (as from HL7 fields): the row says where, never what.
    warnings = tuple(f"nul_removed:{path}" for path in nul_paths[:_MAX_WARNINGS])
    return Part(raw=payload, content_format="json", message=to_message(event), warnings=warnings, digest=_json_digest(body))


def _without_nul(value: object, path: str, found: list[str]) -> object:
    """`value` with NUL removed from its strings; the paths of those strings (``orders.0.notes``)
    appended to `found`. Only used once the event validated, so every key is a field name of the
    schema, never content."""
    if isinstance(value, str):
        if "\x00" in value:
            found.append(path or "(event)")
            return value.replace("\x00", "")
        return value
    if isinstance(value, list):
        return [_without_nul(item, f"{path}.{i}" if path else str(i), found) for i, item in enumerate(value)]
    if isinstance(value, dict):
        return {key: _without_nul(item, f"{path}.{key}" if path else str(key), found) for key, item in value.items()}
    return value


def _json_digest(body: object) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def content_digest(raw: bytes, content_format: str) -> str:
    """The digest a stored message's bytes would get as a `Part` (for claims made before digests)."""
    if content_format == "json":
        try:
            return _json_digest(json.loads(raw.decode("utf-8-sig"), parse_constant=_reject_constant))
        except (UnicodeDecodeError, ValueError, RecursionError):
            return hashlib.sha256(raw).hexdigest()
    return hl7_digest(raw)


def _path(err: dict) -> str:
    """The field path of a validation error; an unknown key is content, so it is not quoted."""
    loc = list(err["loc"])
    if err["type"] == "extra_forbidden" and loc:
        loc[-1] = "(unknown field)"
    return ".".join(str(p) for p in loc) or "(event)"


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _json_peek(text: str) -> Peek:
    try:
        body = json.loads(text)
    except ValueError:
        return Peek()
    if not isinstance(body, dict):
        return Peek()
    kind = {"patient": "ADT^A08", "order": "ORM^O01", "result": "ORU^R01"}.get(str(body.get("event")))
    return Peek(message_type=kind, control_id=_short(body.get("message_id")),
                sending_application=_short(body.get("sending_application")),
                sending_facility=_short(body.get("sending_facility")))


def _short(value: object, limit: int = 200) -> str | None:
    if not isinstance(value, str):
        return None
    value = safe_text(value).strip()
    return value[:limit] or None


def peek(raw: bytes) -> Peek:
    """MSH-3, MSH-4, MSH-9 and MSH-10 read naively from the first MSH line; never raises."""
    try:
        start = raw.find(b"MSH")
        if start < 0 or len(raw) < start + 8:
            return Peek()
        line = re.split(rb"[\r\n\x1c]", raw[start:], maxsplit=1)[0].decode("utf-8", "replace")
        sep = line[3]
        fields = line.split(sep)
        component = line[4] if len(line) > 4 else "^"

        def f(n: int) -> str | None:
            # MSH-1 is the separator itself, so MSH-n is fields[n - 1].
            return _short(fields[n - 1].split(component)[0]) if len(fields) >= n else None

        kind = _short("^".join(p for p in fields[8].split(component)[:2] if p)) if len(fields) >= 9 else None
        return Peek(message_type=kind, control_id=_short(fields[9]) if len(fields) >= 10 else None,
                    sending_application=f(3), sending_facility=f(4))
    except Exception:  # noqa: BLE001 — a display aid only
        return Peek()


def message_type(header: Header) -> str:
    return "^".join(p for p in (header.message_type, header.trigger_event) if p)[:40]


def message_time(header: Header) -> datetime | None:
    return header.message_datetime
