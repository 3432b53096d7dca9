"""LIS benchmark load: realistic final ORU^R01 messages (HL7 v2.5.1, 10–18 segments: MSH, PID, PV1,
ORC, OBR, one OBX per panel test, NTEs, SPM) from the project's generator
(``tests.support.hl7_gen.oru_batch``), wrapped as Pub/Sub push request bodies."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timezone

from tests.support.hl7_gen import oru_batch

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


def messages(count: int, namespace: str, patients: int = 2000, seed: int = 3) -> list[bytes]:
    return oru_batch(seed, count, namespace, patients=patients)


def push_lines(raws: list[bytes], namespace: str) -> list[str]:
    """Push bodies as JSON lines (message ids unique per namespace)."""
    now = datetime.now(timezone.utc)
    return [json.dumps(push_body(raw, f"{namespace}-{n}", now), separators=(",", ":")) for n, raw in enumerate(raws)]
