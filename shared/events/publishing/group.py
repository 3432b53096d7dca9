"""Concurrent after-commit publishes of one process, run together (group publishing).

Every request that commits outbox rows publishes them before it answers (``relay.publish_committed``):
two statements (claim, record the outcomes) and a transaction of its own per request. Under load
many requests reach that point at once; run one by one, each pays its own claim, its own record and
its own commit (a WAL flush). Here, the first request to arrive runs a *round* for every request
waiting at that moment: one claim of all their rows (oldest first, the per-subject order checked
across all of them), the sends, one record of all outcomes, one commit. Requests that arrive while a
round runs wait for it to end; then one of them runs the next round for all that arrived meanwhile
(the leader/follower scheme of group commit). Nothing is deferred: every request still answers only
after its own rows were published or left for the sweep, as alone. (With ``PUBLISH_IN_BACKGROUND``
the requests do not wait here: ``after_commit``'s one thread per process is the only caller.)

A request that waits past its publish deadline before any round took its rows gives up: its rows stay
unpublished for the outbox sweep, as when the sink is slow. One group per publisher (a test's fake
publisher is never mixed with the configured sink).
"""

from __future__ import annotations

import threading
import time
import uuid
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shared.events.publishing.relay import BatchResult


class _Request:
    __slots__ = ("done", "error", "ids", "leads", "result", "woken")

    def __init__(self, ids: list[uuid.UUID]) -> None:
        self.ids = ids
        self.done = False  # a round took and finished this request's rows
        self.leads = False  # handed the next round
        self.result: BatchResult | None = None
        self.error: BaseException | None = None
        self.woken = threading.Lock()  # held until this request is woken: done, or its turn to lead
        self.woken.acquire()


class PublishGroup:
    """Only the requests a finished round concerns are woken: those it answered, and the one that
    runs the next round (a broadcast to every waiting thread cost more CPU than the round saved)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: list[_Request] = []
        self._running = False

    def publish(self, ids: list[uuid.UUID], run: Callable[[list[uuid.UUID]], BatchResult],
                deadline: float) -> BatchResult | None:
        """``run(all ids of the round)`` for this request's ``ids`` and every request waiting with
        them; returns this request's part of the outcome, or None when it gave up waiting before any
        round took its rows (they are the sweep's). An error of the round is raised in every request
        of it."""
        mine = _Request(ids)
        with self._lock:
            self._waiting.append(mine)
            if not self._running:
                self._running = mine.leads = True
        if not mine.leads:
            # Wait to be woken. Taken into a round, wait for its end whatever the deadline (the round
            # keeps to the deadline of the request that runs it); still waiting at the deadline, leave.
            remaining = deadline - time.monotonic()
            if not mine.woken.acquire(timeout=max(remaining, 0)):
                with self._lock:
                    if not mine.leads and mine in self._waiting:
                        self._waiting.remove(mine)
                        return None
                mine.woken.acquire()  # taken meanwhile, or handed the lead: woken soon
            if mine.done:
                return _outcome(mine)
        with self._lock:
            batch, self._waiting = self._waiting, []
        try:
            result = run([row_id for request in batch for row_id in request.ids])
            for request in batch:
                request.result = result.part(request.ids)
        except BaseException as exc:  # noqa: BLE001 — raised again in every request of the round
            for request in batch:
                request.error = exc
        finally:
            with self._lock:
                for request in batch:
                    request.done = True
                following = self._waiting[0] if self._waiting else None
                if following is None:
                    self._running = False
                else:
                    following.leads = True  # the round goes on with the next leader
            for request in batch:
                if request is not mine:
                    request.woken.release()
            if following is not None:
                following.woken.release()
        return _outcome(mine)


def _outcome(request: _Request) -> BatchResult | None:
    if request.error is not None:
        raise request.error
    return request.result


_groups: weakref.WeakKeyDictionary[object, PublishGroup] = weakref.WeakKeyDictionary()
_groups_lock = threading.Lock()


def group_for(publisher: object) -> PublishGroup:
    """The process's group of ``publisher`` (made on first use)."""
    group = _groups.get(publisher)
    if group is None:
        with _groups_lock:
            group = _groups.get(publisher)
            if group is None:
                group = _groups[publisher] = PublishGroup()
    return group
