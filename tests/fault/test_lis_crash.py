"""kill -9 in the middle of a LIS stream: whatever was in flight is lost with the process, the pusher
redelivers it to the restarted process, and every message ends applied exactly once."""

from __future__ import annotations

import signal
import threading

import psutil
import pytest

from tests.fault.conftest import LIS_FEED_SIZE, LIS_NAMESPACE
from tests.fault.lis_support import Pusher, assert_applied_exactly_once, feed, phi_values
from tests.support.processes import free_port

pytestmark = [pytest.mark.fault, pytest.mark.e2e]
KILL_AFTER_ACKS = 60


def _kill9(pids: list[int]) -> None:
    for pid in pids:
        try:
            psutil.Process(pid).send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass


@pytest.mark.timeout(240)
@pytest.mark.parametrize("victim", ["worker", "whole-process-tree"])
def test_kill_9_mid_stream_then_redelivery_applies_every_message_exactly_once(fresh_database, fault_run, lis_reference, victim):
    messages = feed(LIS_FEED_SIZE, LIS_NAMESPACE)
    fault_run.remember_phi(*phi_values(messages))
    env = {"DATABASE_URL": fresh_database, "THREADS": "4", "DB_POOL_SIZE": "4"}
    port = free_port()
    current = {"proc": fault_run.start("lis_consumer", env, port=port)}
    reached = threading.Event()
    pusher = Pusher(url=lambda: f"http://127.0.0.1:{port}", concurrency=4, deadline_s=180)
    outcome: dict = {}

    def push_all() -> None:
        outcome["failed"] = pusher.deliver(messages, on_ack=lambda n: n >= KILL_AFTER_ACKS and reached.set())

    sender = threading.Thread(target=push_all, daemon=True)
    sender.start()
    assert reached.wait(120), "the stream never got going"
    master = psutil.Process(current["proc"].proc.pid)
    workers = [c.pid for c in master.children(recursive=True)]
    assert workers, "no gunicorn worker to kill"
    if victim == "worker":
        _kill9(workers)  # the gunicorn arbiter starts a new worker, as in a container that survives
    else:
        _kill9([master.pid, *workers])  # the whole container dies: the platform starts a new one
        current["proc"].proc.wait(timeout=10)
        current["proc"] = fault_run.start("lis_consumer", env, port=port)
    sender.join(timeout=200)

    assert outcome.get("failed") == [], "messages were never acknowledged after the crash"
    interrupted = [a for a in pusher.attempts if a.status is None or a.status >= 500]
    assert interrupted, "the kill interrupted no delivery: nothing was tested"
    assert all(a.status in (None, 200, 502, 503) for a in pusher.attempts), pusher.statuses()
    assert_applied_exactly_once(fresh_database, LIS_NAMESPACE, messages, lis_reference)
    if victim == "worker":
        assert master.is_running() and current["proc"].proc.poll() is None
