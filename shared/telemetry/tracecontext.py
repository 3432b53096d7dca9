"""W3C trace context without OpenTelemetry: parse, bind to the current request or delivery, store.

The trace and span ids of the current request live where log lines read them
(``shared.log.bind_request``); the sampling flag and ``tracestate`` live here. When tracing is on,
the ids bound are those of the OpenTelemetry span (``shared.telemetry.spans``), so a log line, a
span and an outbox row of one request name the same trace and span. When it is off, ids are made
here and the caller's trace is continued all the same: its trace id is kept, and the outbox row
carries it on to the consumers.
"""

from __future__ import annotations

import contextvars
import re
from dataclasses import dataclass

from shared.ids import token_hex
from shared.log import bind_request, current_trace

_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-[0-9a-f].*)?$")
_CLOUD_TRACE = re.compile(r"^([0-9a-f]{32})(?:/(\d{1,20}))?(?:;o=([01]))?")
# tracestate list members (W3C Trace Context §3.3.1): key=value, at most 32, values printable ASCII.
_TS_KEY = re.compile(r"^(?:[a-z][a-z0-9_\-*/]{0,255}|[a-z0-9][a-z0-9_\-*/]{0,240}@[a-z][a-z0-9_\-*/]{0,13})$")
_TS_VALUE = re.compile(r"^[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]$")
TRACESTATE_MAX = 512  # the outbox column's width
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16

# (sampled, tracestate) of the current request or delivery.
_state: contextvars.ContextVar[tuple[bool, str | None]] = contextvars.ContextVar("trace_state", default=(True, None))


@dataclass(frozen=True)
class RemoteParent:
    """The caller's span: where this request or delivery continues the trace."""

    trace_id: str
    span_id: str
    sampled: bool
    tracestate: str | None = None


def new_trace_id() -> str:
    return token_hex(16)


def new_span_id() -> str:
    return token_hex(8)


def parse_traceparent(value: str | None, tracestate: str | None = None) -> RemoteParent | None:
    """A valid ``traceparent`` (any version but ff; version 00 has exactly four fields), else None."""
    if not value:
        return None
    m = _TRACEPARENT.match(value.strip().lower())
    if not m:
        return None
    version, trace_id, span_id, flags, rest = m.groups()
    if version == "ff" or (version == "00" and rest) or trace_id == _ZERO_TRACE or span_id == _ZERO_SPAN:
        return None
    return RemoteParent(trace_id, span_id, bool(int(flags, 16) & 1), clean_tracestate(tracestate))


def parse_cloud_trace(value: str | None) -> RemoteParent | None:
    """Google's ``X-Cloud-Trace-Context: TRACE_ID/SPAN_ID;o=1`` (span id in decimal)."""
    if not value:
        return None
    m = _CLOUD_TRACE.match(value.strip().lower())
    if not m or m.group(1) == _ZERO_TRACE:
        return None
    span = int(m.group(2) or 0)
    if not 0 < span < 2**64:
        span_id = new_span_id()  # no usable parent span: keep the trace, start a new branch
    else:
        span_id = f"{span:016x}"
    return RemoteParent(m.group(1), span_id, m.group(3) != "0")


def clean_tracestate(value: str | None) -> str | None:
    """``tracestate`` if it is well formed and fits the outbox column, else None (it is dropped)."""
    if not value:
        return None
    members = [m.strip() for m in value.split(",") if m.strip()]
    if not members or len(members) > 32:
        return None
    for member in members:
        key, sep, val = member.partition("=")
        if not sep or not _TS_KEY.match(key) or not _TS_VALUE.match(val):
            return None
    joined = ",".join(members)
    return joined if len(joined) <= TRACESTATE_MAX else None


def bind(request_id: str, trace_id: str, span_id: str, *, sampled: bool = True, tracestate: str | None = None) -> None:
    """Make these the current request's ids: log lines and outbox rows written from here on carry them."""
    bind_request(request_id, trace_id, span_id)
    _state.set((sampled, tracestate))


def current_traceparent() -> str | None:
    """The ``traceparent`` naming the current span (what an outbox row stores), or None."""
    trace_id, span_id = current_trace()
    if not (trace_id and span_id):
        return None
    return f"00-{trace_id}-{span_id}-{'01' if _state.get()[0] else '00'}"


def current_tracestate() -> str | None:
    return _state.get()[1]
