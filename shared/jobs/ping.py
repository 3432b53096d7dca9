"""A Knative PingSource tick → which job, which slot (see ../shared/conformance/knative/pingsource-event.md).

The data is the PingSource's ``spec.data``, ``{"job": "<name>", ...}``. It may arrive parsed
(binary mode: the CloudEvents SDK json-decodes any body), as bytes (``data_base64`` in structured
mode, or a body that is not JSON), and ``datacontenttype`` may be absent. When the data names no
job, the PingSource's own name (the last segment of ``source``) does.

The slot comes from the event ``time`` (the send time, a moment after the scheduled minute);
without one, from the time of receipt. A sender whose timer fires a hair early (``make dev``'s
router sleeps on a monotonic clock) still lands in its own slot: the time is taken
``EARLY_TOLERANCE`` later before rounding down.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from typing import Any

from cloudevents.abstract import CloudEvent

from shared import cron
from shared.instants import utcnow
from shared.jobs import registry

PING_TYPE = "dev.knative.sources.ping"
EARLY_TOLERANCE = timedelta(seconds=2)
_PING_SOURCE = re.compile(r"^/apis/v1/namespaces/[^/]+/pingsources/([^/]+)$")


def is_ping(event: CloudEvent) -> bool:
    return event["type"] == PING_TYPE


def job_name(event: CloudEvent) -> str | None:
    data: Any = event.get_data()
    if isinstance(data, (bytes, bytearray)):
        try:
            data = json.loads(bytes(data).decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            data = None
    if isinstance(data, dict) and isinstance(data.get("job"), str) and data["job"].strip():
        return data["job"].strip()
    if m := _PING_SOURCE.match(str(event["source"])):
        return m.group(1)
    return None


def event_time(event: CloudEvent) -> datetime:
    raw = event.get("time")
    if raw:
        try:
            moment = datetime.fromisoformat(str(raw))
        except ValueError:
            moment = None
        if moment is not None and moment.tzinfo is not None:
            return moment
    return utcnow()


def slot(job: registry.Job, event: CloudEvent) -> datetime:
    return cron.slot_for(job.schedule, job.timezone, event_time(event) + EARLY_TOLERANCE)
