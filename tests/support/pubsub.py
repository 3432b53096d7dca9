"""The real Pub/Sub emulator on a free 127.0.0.1 port, for tests (stopped by its process id).

The emulator is installed on the CI machines, so a missing emulator is an error, never a skip.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from shared.devtools.devrouter import emulator


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_emulator(log_dir: Path, project: str = "patient-mgt-test") -> Iterator[emulator.Emulator]:
    if emulator.emulator_command("127.0.0.1", 0) is None:
        raise RuntimeError("the Pub/Sub emulator is required for these tests "
                           f"({emulator.EMULATOR_BINARY} or `gcloud components install pubsub-emulator`)")
    port = _free_port()
    proc = emulator.start("127.0.0.1", port, log_dir / f"pubsub-emulator-{port}.log")
    try:
        yield emulator.Emulator(f"127.0.0.1:{port}", project)
    finally:
        emulator.stop(proc)
