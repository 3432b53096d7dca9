"""Run calls at the same moment from threads (a barrier releases them together)."""

from __future__ import annotations

import threading
from collections.abc import Callable


def at_once(n: int, work: Callable[[int], object], *, timeout: float = 60) -> list[object]:
    """``work(0) … work(n-1)`` on ``n`` threads released together; each result, or the exception it raised."""
    barrier = threading.Barrier(n)
    results: list[object] = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work(i)
        except BaseException as exc:  # noqa: BLE001 — the caller asserts on what each call ended with
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    return results
