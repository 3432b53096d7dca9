"""The LIS side of the fault suite: a feed, a Pub/Sub-like pusher that redelivers until 2xx, and a
snapshot of what the feed left in a database, to compare a faulty run with a clean one.

The snapshot is the domain state the feed produced — patients (keyed by their LIS identifiers),
lab orders (by placer/filler number) and results (by order and result key) — with every column
except surrogate keys, our own MRN, timestamps of our clock and the bookkeeping of how many times a
row changed (``version``, ``previous_versions``, the id of the message that last wrote it), which
legitimately depend on arrival order. Two runs of the same feed must produce equal snapshots.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import requests
import sqlalchemy as sa

from tests.support import hl7_gen
from tests.support.lis_delivery import push

VOLATILE = {"id", "mrn", "created_at", "updated_at", "version", "previous_versions", "lis_message_id",
            "received_at", "processed_at", "claimed_at", "message_id", "patient_id", "order_id", "merged_into"}


@dataclass(frozen=True)
class PushMessage:
    message_id: str
    headers: dict[str, str]
    body: bytes
    raw: bytes
    control_id: str


def feed(count: int, namespace: str, seed: int = 20261125) -> list[PushMessage]:
    """``count`` messages of a realistic mixed feed (ADT, ORM, ORU P/F/C) as push bodies, in true order."""
    out = []
    for n, generated in enumerate(hl7_gen.stream(seed, count, namespace)):
        message_id = f"{namespace}-{n:05d}"
        headers, body = push(generated.raw, message_id)
        out.append(PushMessage(message_id, headers, body, generated.raw, f"{namespace}{n + 1:07d}"))
    return out


def phi_values(messages: Iterable[PushMessage]) -> set[str]:
    """Distinctive PHI in the feed (names with the namespace-free generator's spelling, phones, MRNs)."""
    values: set[str] = set()
    for m in messages:
        for segment in m.raw.decode("utf-8").split("\r"):
            fields = segment.split("|")
            if fields[0] == "PID" and len(fields) > 13:
                values.add(fields[3].split("^")[0])  # the LIS MRN
                values.add(fields[5].split("^")[0])  # family name
                values.add(fields[13].split("^")[-1])  # phone
                values.add(fields[11].split("^")[0])  # street line
    return {v for v in values if len(v) >= 6}


@dataclass
class Attempt:
    message_id: str
    status: int | None
    error: str | None
    body: str = ""


@dataclass
class Pusher:
    """Delivers messages like a Pub/Sub push subscription: anything but 2xx is delivered again
    (after a short backoff) until it is acknowledged or the deadline passes."""

    url: Callable[[], str]
    concurrency: int = 4
    timeout: float = 20.0
    deadline_s: float = 120.0
    attempts: list[Attempt] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def deliver(self, messages: list[PushMessage], on_ack: Callable[[int], None] | None = None) -> list[PushMessage]:
        """Push every message until acknowledged; returns the ones that never were (empty on success)."""
        queue = list(reversed(messages))
        pending_lock = threading.Lock()
        failed: list[PushMessage] = []
        acked = [0]
        deadline = time.monotonic() + self.deadline_s

        def worker() -> None:
            session = requests.Session()
            while True:
                with pending_lock:
                    if not queue:
                        return
                    message = queue.pop()
                backoff = 0.05
                while True:
                    if time.monotonic() > deadline:
                        with pending_lock:
                            failed.append(message)
                        break
                    try:
                        resp = session.post(self.url() + "/", data=message.body, headers=message.headers, timeout=self.timeout)
                        attempt = Attempt(message.message_id, resp.status_code, None, resp.text[:500])
                    except requests.RequestException as exc:
                        session = requests.Session()
                        attempt = Attempt(message.message_id, None, type(exc).__name__)
                    with self.lock:
                        self.attempts.append(attempt)
                    if attempt.status is not None and 200 <= attempt.status < 300:
                        with pending_lock:
                            acked[0] += 1
                            count = acked[0]
                        if on_ack:
                            on_ack(count)
                        break
                    time.sleep(backoff)
                    backoff = min(1.0, backoff * 2)

        threads = [threading.Thread(target=worker, daemon=True) for _ in range(self.concurrency)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return failed

    def statuses(self) -> dict[int | str, int]:
        out: dict[int | str, int] = {}
        for a in self.attempts:
            key = a.status if a.status is not None else a.error or "error"
            out[key] = out.get(key, 0) + 1
        return out


def shuffled_redeliveries(messages: list[PushMessage], copies: int, seed: int) -> list[PushMessage]:
    rng = random.Random(seed)
    out = [m for m in messages for _ in range(copies)]
    rng.shuffle(out)
    return out


# --- the resulting state ----------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (list, tuple)):
        return tuple(_plain(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _plain(v)) for k, v in value.items()))
    return value


def _stable(row: sa.Row[Any]) -> tuple:
    return tuple(sorted((k, _plain(v)) for k, v in row._mapping.items() if k not in VOLATILE))


def snapshot(url: str, namespace: str) -> dict[str, Any]:
    """The domain state the feed ``namespace`` produced in the database at ``url``."""
    from shared.models.patients import MRN_SYSTEM  # noqa: PLC0415

    engine = sa.create_engine(url)
    meta = sa.MetaData()
    patients, identifiers, orders, results, messages = (
        sa.Table(name, meta, autoload_with=engine)
        for name in ("patients", "patient_identifiers", "lab_orders", "lab_results", "lis_messages"))
    with engine.connect() as conn:
        patient_ids = set(conn.execute(sa.select(messages.c.patient_id).where(
            messages.c.control_id.like(f"{namespace}%"), messages.c.patient_id.is_not(None))).scalars())
        keys: dict[Any, tuple] = {}
        for pid in patient_ids:
            ids = conn.execute(sa.select(identifiers.c.system, identifiers.c.value).where(
                identifiers.c.patient_id == pid, identifiers.c.system != MRN_SYSTEM)).all()
            keys[pid] = tuple(sorted((s, v) for s, v in ids))
        state_patients = {keys[r.id]: _stable(r) for r in conn.execute(sa.select(patients).where(patients.c.id.in_(patient_ids)))}
        order_rows = conn.execute(sa.select(orders).where(orders.c.patient_id.in_(patient_ids))).all()
        order_key = {r.id: (r.placer_namespace, r.placer_number, r.filler_namespace, r.filler_number) for r in order_rows}
        state_orders = {order_key[r.id]: (keys[r.patient_id], _stable(r)) for r in order_rows}
        state_results = {
            (order_key[r.order_id], r.result_key): (keys[r.patient_id], _stable(r))
            for r in conn.execute(sa.select(results).where(results.c.patient_id.in_(patient_ids)))
        }
    engine.dispose()
    return {"patients": state_patients, "orders": state_orders, "results": state_results}


def stored_messages(url: str, namespace: str) -> list[sa.Row[Any]]:
    """The lis_messages rows of the feed (one per Pub/Sub message id when nothing was applied twice)."""
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT pubsub_message_id, control_id, status, error_code, delivery_count FROM lis_messages "
            "WHERE pubsub_message_id LIKE :p ORDER BY pubsub_message_id"), {"p": f"{namespace}-%"}).all()
    engine.dispose()
    return list(rows)


def assert_applied_exactly_once(url: str, namespace: str, messages: list[PushMessage], reference: dict[str, Any]) -> None:
    rows = stored_messages(url, namespace)
    by_id: dict[str, list[Any]] = {}
    for r in rows:
        by_id.setdefault(r.pubsub_message_id, []).append(r)
    missing = [m.message_id for m in messages if m.message_id not in by_id]
    assert not missing, f"{len(missing)} acknowledged messages were not stored, e.g. {missing[:3]}"
    twice = [k for k, v in by_id.items() if len(v) != 1]
    assert not twice, f"messages stored more than once: {twice[:3]}"
    unfinished = [(r.pubsub_message_id, r.status, r.error_code) for r in rows if r.status == "failed"]
    assert not unfinished, f"messages left failed/incomplete: {unfinished[:3]}"
    state = snapshot(url, namespace)
    for part in ("patients", "orders", "results"):
        assert set(state[part]) == set(reference[part]), f"{part}: different rows than one clean in-order delivery"
        differing = [k for k in reference[part] if state[part][k] != reference[part][k]]
        assert not differing, f"{part}: {len(differing)} rows differ from one clean in-order delivery, e.g. {differing[:1]}"
