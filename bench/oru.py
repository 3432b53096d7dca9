"""LIS benchmark load: realistic final ORU^R01 messages (HL7 v2.5.1, 10–18 segments: MSH, PID, PV1,
ORC, OBR, one OBX per panel test, NTEs, SPM) from the project's generator
(``tests.support.hl7_gen``), wrapped as Pub/Sub push request bodies."""

from __future__ import annotations

import base64
import json
import random
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from tests.support.hl7_gen import PANELS, START, GenOrder, make_patient, oru_batch, oru_r01, results_for

SUBSCRIPTION = "projects/patient-mgt-local/subscriptions/lis-results-push"


def push_body(raw: bytes, message_id: str, publish_time: datetime) -> dict:
    """A Pub/Sub push request body (what a push subscription POSTs)."""
    message = {
        "data": base64.b64encode(raw).decode(),
        "messageId": message_id,
        "publishTime": publish_time.isoformat().replace("+00:00", "Z"),
        "attributes": {"source": "central-lab", "contentType": "application/hl7-v2"},
    }
    return {"message": message, "subscription": SUBSCRIPTION}


# The LIS goal is stated for an 8-OBX ORU^R01: the basic metabolic panel has eight tests.
EIGHT_OBX_PANEL = "BMP"


def messages(count: int, namespace: str, patients: int = 2000, seed: int = 3, panel: str | None = None,
             pool: str | None = None, each_patient_once: bool = False) -> list[bytes]:
    """``count`` final ORU^R01 (control ids and orders under ``namespace``) for ``patients`` patients:
    panels drawn at random (the generator's mix, 2–10 OBX), or every message of ``panel``
    (``EIGHT_OBX_PANEL``: the 8-OBX message the goals are stated for).

    With a panel, the patients are those of ``pool`` (default: ``namespace``), the same people whatever
    the batch — so a first batch with ``each_patient_once`` makes them known and later batches of the same
    pool are results for known patients, as a lab's results mostly are."""
    if panel is None:
        return oru_batch(seed, count, namespace, patients=patients)
    pool = pool or namespace
    pool_rng = random.Random(f"{seed}:{pool}")
    people = [make_patient(pool_rng, pool, n) for n in range(patients)]
    rng = random.Random(f"{seed}:{namespace}")
    out = []
    for i in range(count):
        when = START + timedelta(seconds=i)
        order = GenOrder(placer=f"P{namespace}{i:07d}", filler=f"F{namespace}{i:07d}", panel=panel, ordered_at=when)
        order.values = results_for(rng, order)
        person = people[i % patients] if each_patient_once else rng.choice(people)
        out.append(oru_r01(person, order, "F", f"LAB-{pool}", f"{namespace}{i:08d}", when, rng))
    return out


def obx_count(raw: bytes) -> int:
    return sum(1 for segment in raw.split(b"\r") if segment.startswith(b"OBX|"))


def push_lines(raws: list[bytes], namespace: str) -> list[str]:
    """Push bodies as JSON lines (message ids unique per namespace)."""
    now = datetime.now(timezone.utc)
    return [json.dumps(push_body(raw, f"{namespace}-{n}", now), separators=(",", ":")) for n, raw in enumerate(raws)]


def push_file(directory: Path, count: int, **kwargs: Any) -> Path:
    """``count`` 8-OBX ORU^R01 push bodies (``messages`` with ``kwargs``) under a namespace of their own,
    one JSON line each, written to a file in ``directory`` (``bench.loadgen``'s input)."""
    namespace = f"P{uuid.uuid4().hex[:6].upper()}"
    path = directory / f"oru-{namespace}.jsonl"
    path.write_text("\n".join(push_lines(messages(count, namespace, panel=EIGHT_OBX_PANEL, **kwargs), namespace)) + "\n")
    return path
