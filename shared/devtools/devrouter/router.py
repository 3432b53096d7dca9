"""The local stand-in for the Knative Broker, its Triggers and the PingSources (``make dev``).

It is every function's ``K_SINK``: it accepts CloudEvents over HTTP (binary or structured mode)
and answers 202, then delivers each event to every Trigger whose ``filter.attributes`` match,
with that Trigger's retry, backoff and dead-letter settings (``delivery``). It fires the
PingSources on their schedules as Knative's adapter does: a new id per tick, type
``dev.knative.sources.ping``, source ``/apis/v1/namespaces/<ns>/pingsources/<name>``, the declared
data, and no ``datacontenttype`` when ``contentType`` is empty. Like the in-memory channel it
keeps nothing on disk: durability is the outbox's job.

Development endpoints: ``GET /healthz``, ``GET /_dev/deliveries`` (the last outcomes, newest last)
and ``POST /_dev/pingsources/<name>`` (fire a PingSource now).
"""

from __future__ import annotations

import heapq
import itertools
import json
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from shared import cron
from shared.devtools.devrouter.delivery import NotACloudEvent, parse_http, send, with_error_extensions
from shared.devtools.devrouter.manifests import Delivery, Destination, Manifests, PingSource, Trigger, delivery_for
from shared.events.publishing import OutgoingEvent
from shared.events.publishing.envelope import format_time
from shared.log import get_logger

log = get_logger("patient_mgt.devrouter")
PING_TYPE = "dev.knative.sources.ping"
SEND_TIMEOUT = 30.0


class Scheduler:
    """Runs callables at given monotonic times on a small thread pool (retries wait here, not in a thread)."""

    def __init__(self, workers: int = 16) -> None:
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._cv = threading.Condition()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="devrouter")
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="devrouter-scheduler", daemon=True)
        self._thread.start()

    def at(self, when: float, task: Callable[[], None]) -> None:
        with self._cv:
            heapq.heappush(self._heap, (when, next(self._seq), task))
            self._cv.notify()

    def soon(self, task: Callable[[], None]) -> None:
        self.at(time.monotonic(), task)

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._stopped and (not self._heap or self._heap[0][0] > time.monotonic()):
                    self._cv.wait(timeout=(self._heap[0][0] - time.monotonic()) if self._heap else None)
                if self._stopped:
                    return
                _, _, task = heapq.heappop(self._heap)
            self._pool.submit(_guarded, task)

    def stop(self) -> None:
        with self._cv:
            self._stopped = True
            self._cv.notify()
        self._pool.shutdown(wait=False, cancel_futures=True)


def _guarded(task: Callable[[], None]) -> None:
    try:
        task()
    except Exception:
        log.error("dev router task failed", exc_info=True)


class Router:
    def __init__(self, manifests: Manifests, services: dict[str, str], *, backoff_scale: float = 1.0,
                 pingsources: bool = True, history: int = 2000,
                 now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> None:
        self.manifests = manifests
        self._now = now  # the wall clock PingSource schedules are read against (tests move it)
        self.services = services  # Knative Service name -> base URL (http://127.0.0.1:8082)
        self.backoff_scale = backoff_scale
        self.deliveries: deque[dict[str, Any]] = deque(maxlen=history)
        self._lock = threading.Lock()
        self.scheduler = Scheduler()
        if pingsources:
            for source in manifests.pingsources:
                self._schedule_ping(source, cron.parse(source.schedule, source.timezone))

    # -- ingress ----------------------------------------------------------------------------
    def accept(self, event: OutgoingEvent) -> int:
        """Fan an accepted event out to the matching Triggers; returns how many matched."""
        matched = [t for t in self.manifests.triggers if t.matches(event.attributes)]
        for trigger in matched:
            self.scheduler.soon(lambda t=trigger: self._attempt(event, t, delivery_for(t, self.manifests.brokers), 0))
        if not matched:
            self._record(event, None, None, 0, "no_trigger")
        return len(matched)

    def resolve(self, destination: Destination) -> str:
        if destination.kind is None:
            assert destination.uri is not None
            return destination.uri
        if destination.kind == "Broker":
            return "broker:" + (destination.name or "default")
        if destination.kind != "Service" or destination.name not in self.services:
            raise KeyError(f"no local address for {destination.kind}/{destination.name}")
        return self.services[destination.name].rstrip("/") + (destination.uri or "/")

    # -- delivery with retries and dead letters -------------------------------------------------
    def _attempt(self, event: OutgoingEvent, trigger: Trigger, delivery: Delivery, attempt: int,
                 dead_letter: bool = False) -> None:
        target = delivery.dead_letter_sink if dead_letter else trigger.subscriber
        assert target is not None
        url = self.resolve(target)  # a dead letter already carries the knativeerror* extensions
        response = send(url, event, delivery.timeout or SEND_TIMEOUT)
        if response.ok:
            self._record(event, trigger, url, attempt + 1, "dead_lettered" if dead_letter else "delivered", response.status)
            return
        if response.retryable and attempt < delivery.retry:
            wait = delivery.backoff(attempt) * self.backoff_scale
            self.scheduler.at(time.monotonic() + wait, lambda: self._attempt(event, trigger, delivery, attempt + 1, dead_letter))
            return
        if not dead_letter and delivery.dead_letter_sink is not None:
            self._record(event, trigger, url, attempt + 1, "failed", response.status)
            failed = with_error_extensions(event, url, response)
            self.scheduler.soon(lambda: self._attempt(failed, trigger, delivery, 0, dead_letter=True))
            return
        self._record(event, trigger, url, attempt + 1, "lost", response.status)  # as Knative: dropped, logged

    def _record(self, event: OutgoingEvent, trigger: Trigger | None, url: str | None, attempts: int, outcome: str,
                status: int | None = None) -> None:
        entry = {"at": format_time(datetime.now(timezone.utc)), "event_id": event.id, "type": event.type,
                 "source": event.attributes.get("source"), "trigger": trigger.name if trigger else None,
                 "destination": url, "attempts": attempts, "status": status, "outcome": outcome}
        with self._lock:
            self.deliveries.append(entry)
        level = log.info if outcome in ("delivered", "no_trigger") else log.error if outcome == "lost" else log.warning
        level(f"event {outcome}", extra={"fields": {k: v for k, v in entry.items() if k != "at"}})

    # -- PingSources ----------------------------------------------------------------------------
    def _schedule_ping(self, source: PingSource, schedule: cron.Schedule) -> None:
        now = self._now()
        due = schedule.next_after(now)
        wait = (due - now).total_seconds()

        def tick() -> None:
            self._schedule_ping(source, schedule)
            self.fire(source)

        self.scheduler.at(time.monotonic() + wait, tick)

    def ping_event(self, source: PingSource) -> OutgoingEvent:
        attributes = {"specversion": "1.0", "id": str(uuid.uuid4()), "source": source.source, "type": PING_TYPE,
                      "time": format_time(datetime.now(timezone.utc))}
        if source.content_type:
            attributes["datacontenttype"] = source.content_type
        return OutgoingEvent(attributes, source.data)

    def fire(self, source: PingSource) -> None:
        event = self.ping_event(source)
        url = self.resolve(source.sink)
        if url.startswith("broker:"):
            self.accept(event)
            return
        response = send(url, event, SEND_TIMEOUT)
        self._record(event, None, url, 1, "delivered" if response.ok else "failed", response.status)

    def stop(self) -> None:
        self.scheduler.stop()


def make_handler(router: Router) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _reply(self, status: int, payload: Any) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802
            if self.path == "/healthz":
                self._reply(200, {"status": "ok"})
            elif self.path.startswith("/_dev/deliveries"):
                with router._lock:
                    self._reply(200, list(router.deliveries))
            else:
                self._reply(404, {"error": "not found"})

        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path.startswith("/_dev/pingsources/"):
                name = self.path.rsplit("/", 1)[-1]
                source = next((p for p in router.manifests.pingsources if p.name == name), None)
                if source is None:
                    self._reply(404, {"error": "no such PingSource"})
                    return
                router.scheduler.soon(lambda: router.fire(source))
                self._reply(202, {"status": "fired"})
                return
            try:
                event = parse_http(dict(self.headers.items()), body)
            except NotACloudEvent as exc:
                self._reply(400, {"error": f"not a CloudEvent: {exc}"})
                return
            matched = router.accept(event)
            self._reply(202, {"status": "accepted", "triggers": matched})

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            return  # deliveries are logged as JSON by the router

    return Handler


def serve(router: Router, host: str, port: int) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer((host, port), make_handler(router))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="devrouter-http", daemon=True).start()
    return server
