"""What a writer does with the outbox rows it has just committed: publish them before it answers, or
hand them to the process's background publisher and answer at once (``PUBLISH_IN_BACKGROUND``).

Before answering (the default) the request waits for its publish round — claim, the sink's answers,
the outcome record (``relay.publish_committed``): three more round trips on its path, each behind
every other process on the node's cores. In the background, the request answers as soon as its data
is committed, and one thread per process publishes whatever the requests committed meanwhile, in the
order they committed, one round at a time (one claim and one record for all of them). Nothing a
delivery guarantees changes: the rows were committed with the data; a round claims them with the same
per-subject order check; what a round cannot send stays unpublished for the ``outbox-sweep`` job, as
when the publish before the answer fails. What changes is only when the event leaves: right after
the answer instead of right before it.

The thread borrows its connection from the process's pool like a request thread, one round at a
time, and is the only one holding a connection across the sink's answers; a request arriving while
every request thread and the thread are in the database waits for the first connection returned (a
request's statements, milliseconds), not for the sink — as before, when every request held one
through its own publish. No pod opens more connections than ``DB_POOL_SIZE``.

The queue is bounded (``MAX_QUEUED`` ids): past it, new ids are left to the sweep (counted and logged)
rather than held in memory behind a sink that does not answer. At exit (a gunicorn worker's graceful
stop, a command's end) what is queued is published within the publish timeout; what is not stays for
the sweep. A forked child starts with an empty queue and its own thread.
"""

from __future__ import annotations

import atexit
import os
import threading
import time
import uuid
from collections.abc import Callable

from shared.log import get_logger

log = get_logger("patient_mgt.events.publish")

MAX_QUEUED = 10_000  # ids waiting for a round; more are the sweep's
MAX_ROUND = 500  # ids claimed by one round (one statement carries them all as literals)


def publish_after_commit(ids: list[uuid.UUID]) -> None:
    """Called right after the commit that wrote ``ids`` to the outbox. Never raises."""
    from shared.settings import get_settings  # noqa: PLC0415

    if get_settings().publish_in_background:
        background().submit(ids)
        return
    from shared.events.publishing.relay import publish_committed  # noqa: PLC0415

    publish_committed(list(ids))


class BackgroundPublisher:
    """A queue of committed outbox ids and the one thread that publishes them (``publish``: a
    round's ids → its publish; it must not raise, like ``relay.publish_committed``)."""

    def __init__(self, publish: Callable[[list[uuid.UUID]], object], *, max_queued: int = MAX_QUEUED,
                 max_round: int = MAX_ROUND) -> None:
        self._publish = publish
        self._max_queued = max_queued
        self._max_round = max_round
        self._cv = threading.Condition()
        self._queued: list[uuid.UUID] = []
        self._busy = False  # a round is running
        self._thread: threading.Thread | None = None
        self.left_to_sweep = 0  # ids refused because the queue was full

    def submit(self, ids: list[uuid.UUID]) -> None:
        with self._cv:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="outbox-publisher", daemon=True)
                self._thread.start()
            room = self._max_queued - len(self._queued)
            if len(ids) > room:
                refused = len(ids) - max(room, 0)
                self.left_to_sweep += refused
                ids = ids[:max(room, 0)]
                log.warning("publish queue full; events left for the outbox sweep",
                            extra={"fields": {"events": refused, "queued": len(self._queued)}})
            if ids:
                self._queued.extend(ids)
                self._cv.notify_all()

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._queued:
                    self._cv.wait()
                batch = self._queued[:self._max_round]
                del self._queued[:self._max_round]
                self._busy = True
            try:
                self._publish(batch)
            except Exception as exc:  # noqa: BLE001 — the thread must outlive any round; the rows are the sweep's
                log.warning("background publish round failed; the outbox sweep will retry",
                            extra={"fields": {"events": len(batch), "error_type": type(exc).__name__}})
            finally:
                with self._cv:
                    self._busy = False
                    self._cv.notify_all()

    def drain(self, timeout: float) -> bool:
        """Wait until every id submitted so far went through a round; False if ``timeout`` ran out
        first (the rest stays in the outbox for the sweep)."""
        deadline = time.monotonic() + timeout
        with self._cv:
            while self._queued or self._busy:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cv.wait(remaining)
        return True


_lock = threading.Lock()
_background: BackgroundPublisher | None = None


def background() -> BackgroundPublisher:
    """The process's background publisher (made on first use; drained at exit)."""
    global _background
    publisher = _background
    if publisher is None:
        with _lock:
            if _background is None:
                from shared.events.publishing.relay import publish_committed  # noqa: PLC0415

                _background = BackgroundPublisher(publish_committed)
                atexit.register(_drain_at_exit)
            publisher = _background
    return publisher


def _drain_at_exit() -> None:
    publisher = _background
    if publisher is None:
        return
    from shared.settings import get_settings  # noqa: PLC0415

    if not publisher.drain(get_settings().publish_timeout_seconds * 2):
        log.warning("events still queued at exit were left for the outbox sweep")


def _forget_in_child() -> None:
    # A forked child has the parent's queue but not its thread: its own publisher starts empty (the
    # parent publishes what it queued).
    global _background, _lock
    _background = None
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_in_child)
