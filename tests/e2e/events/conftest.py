"""The whole `make dev` stack, started by the same code (shared.devtools.devrun.DevStack) on free ports:
the four functions as real functions-framework processes, the dev router reading knative/, and the
real Pub/Sub emulator (required: CI machines have it)."""

from __future__ import annotations

import shutil
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from shared.devtools.devrouter.emulator import Emulator
from shared.devtools.devrun import DevStack, StackConfig
from shared.settings import PROJECT_ROOT
from tests.support.dev_stack import start_on_free_ports
from tests.support.processes import closed_port as hold_closed_port

UNREACHABLE_TYPE = "org.patientmgt.test.unreachable.v1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Stack:
    dev: DevStack
    emulator: Emulator
    admin_token: str
    data_dir: Path
    closed_port: int

    def url(self, function: str) -> str:
        return self.dev.url(function)

    @property
    def router(self) -> str:
        return self.dev.router_url

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_token}"}


def _manifests(tmp: Path, closed_port: int) -> Path:
    """The production manifests, plus one Trigger whose subscriber never answers (dead-letter tests)."""
    root = tmp / "knative"
    shutil.copytree(PROJECT_ROOT / "knative", root)
    trigger = {"apiVersion": "eventing.knative.dev/v1", "kind": "Trigger",
               "metadata": {"name": "test-unreachable", "namespace": "patient-mgt"},
               "spec": {"broker": "default", "filter": {"attributes": {"type": UNREACHABLE_TYPE}},
                        "subscriber": {"uri": f"http://127.0.0.1:{closed_port}/"},
                        "delivery": {"retry": 3, "backoffPolicy": "exponential", "backoffDelay": "PT0.1S",
                                     "deadLetterSink": {"ref": {"apiVersion": "serving.knative.dev/v1", "kind": "Service",
                                                                "name": "jobs"}, "uri": "/dead-letter"}}}}
    (root / "app" / "test-triggers.yaml").write_text(yaml.safe_dump(trigger))
    return root


@pytest.fixture(scope="module")
def stack(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    from shared.auth import create_api_key  # noqa: PLC0415
    from shared.db import unit_of_work  # noqa: PLC0415

    tmp = tmp_path_factory.mktemp("stack")
    # The subscriber "that is down" stays down until the stack is stopped: the emulator and the router
    # retry their pushes to it, and a port that was merely free could meanwhile become another worker's
    # lis_consumer (which then stored this module's dead-letter message as its own delivery).
    with hold_closed_port() as closed_port:
        def config() -> StackConfig:
            ports = {name: _free_port() for name in ("api", "lis_consumer", "notify", "jobs")}
            return StackConfig(
                ports=ports, router_port=_free_port(), emulator_port=None, use_emulator=True, reload=False, pingsources=False,
                backoff_scale=1.0, manifests=_manifests(tmp, closed_port), log_dir=tmp / "logs",
                state_path=tmp / "dev" / "stack.json",
                env={"DATA_DIR": str(tmp), "API_KEY_CACHE_SECONDS": "0", "THREADS": "4", "NOTIFY_PROVIDER": "console"},
            )

        dev = start_on_free_ports(database_url, config)
        try:
            assert dev.emulator_host, "the Pub/Sub emulator must run in this test (it is installed on CI machines)"
            with unit_of_work() as uow:
                _key, token = create_api_key(uow, f"e2e-events-{uuid.uuid4().hex[:8]}", ["admin"])
            yield Stack(dev, Emulator(dev.emulator_host, dev.project), token, tmp, closed_port)
        finally:
            dev.stop()
