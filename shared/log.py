"""One logger setup: JSON lines on stdout in Cloud Logging's shape.

A line carries ``severity``, ``message``, ``time``, the trace
(``logging.googleapis.com/trace``) and the request id, plus the ``fields`` a caller passes with
``extra={"fields": {...}}``. Callers pass ids, counts, codes and durations only — never names,
birth dates, identifiers, contact data or message payloads. Exception tracebacks are logged as
the exception *type* and the code location only: exception text can carry PHI.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import time
import traceback
from datetime import datetime, timezone
from typing import Any

from shared.settings import get_settings

_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
_trace_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("trace_id", default=None)
_span_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("span_id", default=None)

_configured = False
_handler: logging.StreamHandler | None = None  # the JSON handler `configure_logging` installed on the root logger
# One encoder for every line: json.dumps with these options builds a new one per call.
_ENCODER = json.JSONEncoder(default=str, ensure_ascii=False)
# Terminal colour/style sequences (Werkzeug styles its lines): never inside a JSON line.
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


def bind_request(request_id: str | None, trace_id: str | None = None, span_id: str | None = None) -> None:
    """Attach the current request's ids to every line logged from this thread/context."""
    _request_id.set(request_id)
    _trace_id.set(trace_id)
    _span_id.set(span_id)


def current_request_id() -> str | None:
    return _request_id.get()


def current_trace() -> tuple[str | None, str | None]:
    return _trace_id.get(), _span_id.get()


def _safe_traceback(exc_info: Any) -> str:
    """Type and frames of an exception, without its message (which may quote patient data)."""
    etype, _evalue, tb = exc_info
    frames = traceback.extract_tb(tb)[-8:]
    where = " <- ".join(f"{f.filename.rsplit('/', 2)[-1]}:{f.lineno}:{f.name}" for f in reversed(frames))
    return f"{etype.__module__}.{etype.__qualname__} at {where}"


def _line(severity: str, message: str, created: float, logger_name: str, fields: Any, exc_info: Any) -> str:
    """One JSON line (without its newline): what `CloudLoggingFormatter` makes of a record, and
    `info_fields` of its arguments."""
    if "\x1b" in message:
        message = _ANSI.sub("", message)
    entry: dict[str, Any] = {
        "severity": severity,
        "message": message,
        "time": datetime.fromtimestamp(created, tz=timezone.utc).isoformat(timespec="milliseconds"),
        "logger": logger_name,
    }
    trace_id = _trace_id.get()
    if trace_id:
        project = get_settings().google_cloud_project
        entry["logging.googleapis.com/trace"] = f"projects/{project}/traces/{trace_id}"
        span_id = _span_id.get()
        if span_id:
            entry["logging.googleapis.com/spanId"] = span_id
    request_id = _request_id.get()
    if request_id:
        entry["request_id"] = request_id
    if isinstance(fields, dict):
        for key, value in fields.items():
            if key not in entry:
                entry[key] = value
    if exc_info:
        entry["error"] = _safe_traceback(exc_info)
    return _ENCODER.encode(entry)


class CloudLoggingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return _line("CRITICAL" if record.levelno >= logging.CRITICAL else record.levelname, record.getMessage(),
                     record.created, record.name, getattr(record, "fields", None), record.exc_info)


def configure_logging() -> None:
    """Install the JSON handler on the root logger once per process."""
    global _configured, _handler
    if _configured:
        return
    handler = _handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(CloudLoggingFormatter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(get_settings().log_level)
    # Libraries that log request details or SQL at INFO stay quiet.
    for noisy in ("sqlalchemy", "botocore", "urllib3", "google", "alembic", "watchdog"):
        logging.getLogger(noisy).setLevel(logging.ERROR if noisy == "watchdog" else logging.WARNING)
    _configured = True


def info_fields(logger: logging.Logger, message: str, fields: dict[str, Any]) -> None:
    """``logger.info(message, extra={"fields": fields})``, for lines logged on every request (the api's
    request line). When the line can only reach the JSON handler of `configure_logging` — no filter on
    the way, no other handler (a test's capture adds one) — it is written straight to that handler's
    stream, the same line its formatter would make: no ``LogRecord`` (its dozen attributes, the thread's
    and process's names), no trip through ``Logger.handle`` and ``Handler.handle``. Otherwise it goes
    through logging as ``logger.info`` would, without looking up the caller's frame (a line of ours never
    prints its source location)."""
    if not logger.isEnabledFor(logging.INFO):
        return
    handler = _sole_handler(logger)
    if handler is None:
        logger.handle(_info_record(logger, message, fields))
        return
    line = _line("INFO", message, time.time(), logger.name, fields, None) + "\n"
    with handler.lock:  # type: ignore[union-attr]  (a StreamHandler always has its lock)
        try:
            handler.stream.write(line)
            handler.stream.flush()
        except Exception:  # noqa: BLE001 — what StreamHandler.emit does with a failed write
            handler.handleError(_info_record(logger, message, fields))


def _info_record(logger: logging.Logger, message: str, fields: dict[str, Any]) -> logging.LogRecord:
    """The record ``logger.info(message, extra={"fields": fields})`` makes, without finding the caller's frame."""
    return logger.makeRecord(logger.name, logging.INFO, "(unknown file)", 0, message, (), None, extra={"fields": fields})


def _sole_handler(logger: logging.Logger) -> logging.StreamHandler | None:
    """`configure_logging`'s handler when an INFO line of ``logger`` would reach it and nothing else:
    no logger on the way has a filter or a handler of its own, and the root has that handler alone,
    unfiltered, at INFO or below."""
    handler = _handler
    if handler is None or handler.filters or handler.level > logging.INFO:
        return None
    current: logging.Logger | None = logger
    while current is not None:
        if current.filters:
            return None
        if current.parent is None:  # the root
            handlers = current.handlers
            return handler if len(handlers) == 1 and handlers[0] is handler else None
        if current.handlers or not current.propagate:
            return None
        current = current.parent
    return None


def get_logger(name: str) -> logging.Logger:
    configure_logging()
    return logging.getLogger(name)
