"""The MLLP adapter as it runs: `patient-mgt mllp` → the real Pub/Sub emulator → a real lis_consumer.

The topic's push subscription enables message ordering (as production's does), so one sender's
messages are delivered one at a time in publish order.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from shared.devtools.devrouter import emulator as emulator_mod
from shared.devtools.devrun import DevStack, StackConfig
from tests.support.dev_stack import start_on_free_ports
from tests.support.processes import ROOT, FunctionProcess, free_port, start_function
from tests.support.fake_lis import FakeLis
from tests.support.pubsub import running_emulator


def start_adapter(env: dict[str, str], log_dir: Path, timeout: float = 30.0) -> FunctionProcess:
    """`patient-mgt mllp` as its Deployment runs it (FunctionProcess only for its logs and stop)."""
    port = free_port()
    log_path = log_dir / f"mllp-{port}.log"
    full_env = {**os.environ, "NO_GCE_CHECK": "true", "MLLP_HOST": "127.0.0.1", "MLLP_PORT": str(port), **env,
                "PYTHONUNBUFFERED": "1"}
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen([sys.executable, "-m", "shared.cli", "mllp"], cwd=ROOT, env=full_env,
                                stdout=log_file, stderr=subprocess.STDOUT)
    adapter = FunctionProcess("mllp", port, proc, log_path, dict(env))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the MLLP adapter exited early:\n{adapter.logs()}")
        if "mllp listening" in adapter.logs():
            return adapter
        time.sleep(0.1)
    adapter.stop()
    raise RuntimeError(f"the MLLP adapter did not start:\n{adapter.logs()}")


@dataclass
class Stack:
    emulator: emulator_mod.Emulator
    topic: str
    lis: FunctionProcess
    adapter: FunctionProcess

    def wire(self) -> None:
        """Topic and ordered push subscription (again after an emulator restart: it keeps nothing)."""
        self.emulator.create_topic(self.topic)
        endpoint = f"{self.lis.url}/{self.emulator.topic_path(self.topic)}"
        self.emulator._call("PUT", f"projects/{self.emulator.project}/subscriptions/{self.topic}-push", {
            "topic": self.emulator.topic_path(self.topic), "ackDeadlineSeconds": 60, "enableMessageOrdering": True,
            "pushConfig": {"pushEndpoint": endpoint},
            "retryPolicy": {"minimumBackoff": "1s", "maximumBackoff": "2s"}})
        # A pull subscription shows what the push body of the emulator leaves out (the ordering key).
        self.emulator._call("PUT", f"projects/{self.emulator.project}/subscriptions/{self.topic}-pull",
                            {"topic": self.emulator.topic_path(self.topic), "ackDeadlineSeconds": 600})

    def pulled(self) -> list[dict]:
        """Every message published so far (pulled without acknowledging: each call sees them again after the deadline)."""
        out: list[dict] = []
        while True:
            got = self.emulator._call("POST", f"projects/{self.emulator.project}/subscriptions/{self.topic}-pull:pull",
                                      {"maxMessages": 1000, "returnImmediately": True}).get("receivedMessages", [])
            if not got:
                return out
            out += [m["message"] for m in got]

    @property
    def source(self) -> str:
        return f"//pubsub.googleapis.com/{self.emulator.topic_path(self.topic)}"


def distinct_ports(count: int) -> list[int]:
    """Free ports, all different (a port freed and handed out again would make two processes collide)."""
    ports: set[int] = set()
    while len(ports) < count:
        ports.add(free_port())
    return sorted(ports)


@contextmanager
def dev_stack(database_url: str, tmp: Path, env: dict[str, str] | None = None) -> Iterator[DevStack]:
    """`make dev`'s stack with the MLLP adapter, on free ports, logging under ``tmp``."""

    def config() -> StackConfig:
        api, lis_consumer, notify, jobs, router, mllp = distinct_ports(6)
        return StackConfig(
            ports={"api": api, "lis_consumer": lis_consumer, "notify": notify, "jobs": jobs}, router_port=router,
            emulator_port=None, use_emulator=True, mllp_port=mllp, reload=False, pingsources=False,
            log_dir=tmp / "logs", state_path=tmp / "dev" / "stack.json",
            env={"DATA_DIR": str(tmp), "THREADS": "4", "NOTIFY_PROVIDER": "console", "API_KEY_CACHE_SECONDS": "0", **(env or {})},
        )

    stack = start_on_free_ports(database_url, config)
    try:
        yield stack
    finally:
        stack.stop()


def adapter_env(emulator: emulator_mod.Emulator, topic: str) -> dict[str, str]:
    return {"PUBSUB_EMULATOR_HOST": emulator.host, "GOOGLE_CLOUD_PROJECT": emulator.project, "MLLP_TOPIC": topic,
            "MLLP_PUBLISH_TIMEOUT_SECONDS": "3", "MLLP_MAX_FRAME_BYTES": "65536", "MLLP_IDLE_TIMEOUT_SECONDS": "5"}


@pytest.fixture(scope="module")
def lis(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FunctionProcess]:
    proc = start_function("lis_consumer", {"DATABASE_URL": database_url, "THREADS": "4"}, tmp_path_factory.mktemp("lis"))
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def stack(lis: FunctionProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    log_dir = tmp_path_factory.mktemp("mllp")
    with running_emulator(log_dir) as emulator:
        topic = f"lis-{uuid.uuid4().hex[:8]}"
        adapter = start_adapter(adapter_env(emulator, topic), log_dir)
        stack = Stack(emulator, topic, lis, adapter)
        stack.wire()
        try:
            yield stack
        finally:
            adapter.stop()


@pytest.fixture(scope="module")
def fake_lis() -> Iterator[FakeLis]:
    """An MLLP server playing the LIS that orders are sent to (tests/support/fake_lis.py)."""
    fake = FakeLis()
    yield fake
    fake.stop()


@contextmanager
def orders_out_stack(database_url: str, lis: FakeLis, tmp: Path, **env: str) -> Iterator[DevStack]:
    """`make dev`'s stack sending orders to `lis` (orders out configured, short timeouts)."""
    base = {"LIS_OUTBOUND_TOPIC": "lis-outbound", "LIS_MLLP_HOST": "127.0.0.1", "LIS_MLLP_PORT": str(lis.port),
            "LIS_OUTBOUND_BACKOFF_SECONDS": "0.2", "LIS_ACK_TIMEOUT_SECONDS": "5"}
    with dev_stack(database_url, tmp, {**base, **env}) as stack:
        yield stack
