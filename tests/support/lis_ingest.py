"""Feed HL7 to the LIS ingest in-process (integration tests) and build small messages by hand."""

from __future__ import annotations

import base64
import uuid

from shared.lis.envelope import from_push_body
from shared.lis.ingest import PartOutcome, ingest


def hl7(*segments: str) -> bytes:
    return ("\r".join(segments) + "\r").encode("utf-8")


def deliver(raw: bytes, message_id: str | None = None) -> list[PartOutcome]:
    """What one Pub/Sub push delivery of `raw` does (same path as the function, without HTTP)."""
    body = {"message": {"data": base64.b64encode(raw).decode(), "messageId": message_id or uuid.uuid4().hex,
                        "publishTime": "2026-11-25T10:00:00Z"}, "subscription": "projects/p/subscriptions/lis"}
    return ingest(from_push_body(body, "/projects/p/topics/lis"))


def one(raw: bytes, message_id: str | None = None) -> PartOutcome:
    [outcome] = deliver(raw, message_id)
    return outcome


class Feed:
    """Unique names for one test: facility, identifiers, order numbers."""

    def __init__(self) -> None:
        self.tag = uuid.uuid4().hex[:10]
        self.facility = f"LAB{self.tag}"
        self._n = 0

    def control(self) -> str:
        self._n += 1
        return f"{self.tag}-{self._n}"

    def id(self, name: str) -> str:
        return f"{name}-{self.tag}"

    def msh(self, kind: str, when: str, control: str | None = None) -> str:
        return f"MSH|^~\\&|LIS|{self.facility}|EHR|HOSP|{when}||{kind}|{control or self.control()}|P|2.5.1"

    def pid(self, mrn: str, name: str = "DOE^JANE", born: str = "19800401", sex: str = "F", extra: str = "") -> str:
        return f"PID|1||{self.id(mrn)}^^^{self.facility}^MR{extra}||{name}||{born}|{sex}"
