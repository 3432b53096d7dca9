"""Memory of the notify function under load: ``patient.registered`` CloudEvents (structured mode, as the
Broker delivers them) for patients of the bench data set, each rendered into the welcome messages and
sent through the console provider — the work a burst of registrations gives it. Rate and statuses are
recorded; the figure the goals name is its peak PSS beside the 120 MB limit."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from bench.load import fixed_point
from bench.procs import Fn, MemorySampler

STRUCTURED = "application/cloudevents+json"


def event_lines(patient_ids: list[str]) -> list[str]:
    from shared.events import catalog  # noqa: PLC0415

    return [json.dumps({"specversion": "1.0", "id": uuid.uuid4().hex, "source": "/bench/notify",
                        "type": catalog.PATIENT_REGISTERED, "datacontenttype": "application/json",
                        "data": {"patient_id": pid, "version": 1, "origin": "api"}}, separators=(",", ":"))
            for pid in patient_ids]


def run(fn: Fn, patient_ids: list[str], work: Path, concurrency: int, log) -> dict:
    bodies = work / "notify-events.jsonl"
    bodies.write_text("\n".join(event_lines(patient_ids)) + "\n")
    with MemorySampler(fn) as mem:
        result = fixed_point(fn.port, bodies, concurrency, content_type=STRUCTURED)
    result["peak_memory"] = mem.peak
    result["ok_rate"] = round(result["ok"] / result["duration_s"], 1) if result["duration_s"] else 0.0
    log(f"notify: {len(patient_ids)} patient.registered events at c={concurrency}: {result['ok_rate']:.0f}/s, "
        f"statuses {result['statuses']}, peak PSS {mem.peak['pss_mb']:.0f} MB")
    return result
