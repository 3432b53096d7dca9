"""Concurrent after-commit publishes of one process, run together (group publishing).

Every request that commits outbox rows publishes them before it answers (``relay.publish_committed``):
two statements (claim, record the outcomes) and a transaction of its own per request. Under load
many requests reach that point at once; run one by one, each pays its own claim, its own record and
its own commit (a WAL flush). Here, the first request to arrive runs a *round* for every request
waiting at that moment: one claim of all their rows (oldest first, the per-subject order checked
across all of them), the sends, one record of all outcomes, one commit. Requests that arrive while a
round runs wait for it to end; then one of them runs the next round for all that arrived meanwhile
(the leader/follower scheme of group commit). Nothing is deferred: every request still answers only
after its own rows were published or left for the sweep, as alone.

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
    __slots__ = ("done", "error", "ids", "result")

    def __init__(self, ids: list[uuid.UUID]) -> None:
        self.ids = ids
        self.done = False
        self.result: BatchResult | None = None
        self.error: BaseException | None = None


class PublishGroup:
    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._waiting: list[_Request] = []
        self._running = False

    def publish(self, ids: list[uuid.UUID], run: Callable[[list[uuid.UUID]], BatchResult],
                deadline: float) -> BatchResult | None:
        """``run(all ids of the round)`` for this request's ``ids`` and every request waiting with
        them; returns this request's part of the outcome, or None when it gave up waiting (its rows
        are the sweep's). An error of the round is raised in every request of it."""
        mine = _Request(ids)
        with self._cond:
            self._waiting.append(mine)
            while not mine.done and self._running:
                remaining = deadline - time.monotonic()
                if remaining <= 0 and mine in self._waiting:
                    self._waiting.remove(mine)
                    return None
                # Taken into the running round: wait for its end, whatever the deadline (the round
                # itself keeps to the earlier deadline of the request that runs it).
                self._cond.wait(remaining if remaining > 0 else 0.05)
            if mine.done:  # a round run by another request took our rows
                return _outcome(mine)
            self._running = True
            batch, self._waiting = self._waiting, []
        try:
            result = run([row_id for request in batch for row_id in request.ids])
            for request in batch:
                request.result = result.part(request.ids)
        except BaseException as exc:  # noqa: BLE001 — raised again in every request of the round
            for request in batch:
                request.error = exc
        finally:
            with self._cond:
                for request in batch:
                    request.done = True
                self._running = False
                self._cond.notify_all()
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
