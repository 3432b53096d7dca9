"""`make dev`'s lifecycle with the embedded PostgreSQL: what Ctrl-C leaves behind, and `make dev-stop`.

The dev runner (``shared.devtools.devrun.run``, what `patient-mgt dev` calls) runs as its own process with a
private DATA_DIR, on free ports, without the emulator; the processes it started are read from
DATA_DIR/dev/stack.json and the postmaster from DATA_DIR/pg/postmaster.pid.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.devtools.embedded_pg import embedded_pid
from shared.pids import alive
from tests.support.processes import ROOT, free_port
from tests.support.waiting import wait_for

pytestmark = pytest.mark.e2e

RUN = """
import sys
import tempfile
from shared.devtools.devrun import StackConfig, run
ports = dict(zip(["api", "lis_consumer", "notify", "jobs"], map(int, sys.argv[1:5])))
sys.exit(run(config=StackConfig(ports=ports, router_port=int(sys.argv[5]), use_emulator=False, reload=False, pingsources=False)))
"""


def _env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "XDG_RUNTIME_DIR")}
    return env | {"DATA_DIR": str(data_dir), "NO_GCE_CHECK": "true", "THREADS": "2"}


class Dev:
    """One `make dev` run: started, then stopped by the test."""

    def __init__(self, data_dir: Path, log: Path) -> None:
        self.data_dir, self.log = data_dir, log
        ports = [str(free_port()) for _ in range(5)]
        with log.open("ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-c", RUN, *ports], cwd=ROOT, env=_env(data_dir),
                                         stdout=out, stderr=subprocess.STDOUT)
        state = data_dir / "dev" / "stack.json"
        wait_for(lambda: self.proc.poll() is not None or state.exists(), timeout=180, interval=0.2, what="make dev to start")
        assert self.proc.poll() is None, log.read_text()
        self.processes: dict[str, int] = json.loads(state.read_text())["processes"]

    def output(self) -> str:
        return self.log.read_text()


def _dev_stop(data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "shared.cli", "dev", "--stop"], cwd=ROOT, env=_env(data_dir),
                          capture_output=True, text=True, timeout=120)


@pytest.fixture()
def data_dir() -> Iterator[Path]:
    """A private DATA_DIR; whatever a failing test leaves running there is stopped afterwards.

    Not under pytest's tmp_path: as root, PostgreSQL runs as pgserver's own user, which must traverse
    the path, and another pytest session of the same user resets /tmp/pytest-of-<user> to 0700."""
    path = Path(tempfile.mkdtemp(prefix="pm-devrun-"))
    yield path / "data"
    _dev_stop(path / "data")
    shutil.rmtree(path, ignore_errors=True)


def test_ctrl_c_stops_every_process_make_dev_started_the_embedded_postgresql_too(data_dir, tmp_path):
    dev = Dev(data_dir, tmp_path / "dev.log")
    postmaster = embedded_pid(dev.data_dir)
    assert postmaster is not None and sorted(dev.processes) == ["api", "jobs", "lis_consumer", "notify", "router"]
    assert all(alive(pid) for pid in dev.processes.values())

    dev.proc.send_signal(signal.SIGINT)
    assert dev.proc.wait(timeout=60) == 0, dev.output()

    assert [name for name, pid in dev.processes.items() if alive(pid)] == []
    assert embedded_pid(dev.data_dir) is None and not alive(postmaster)
    assert "the embedded PostgreSQL too" in dev.output()
    assert (dev.data_dir / "pg" / "PG_VERSION").exists()  # the data stays for the next run


def test_an_embedded_postgresql_make_dev_did_not_start_stays_up_and_make_dev_stop_ends_it_and_any_orphan(data_dir, tmp_path):
    started = subprocess.run([sys.executable, "-c", "import sys; from pathlib import Path; from shared.devtools.embedded_pg import "
                              "start_embedded; start_embedded(Path(sys.argv[1]))", str(data_dir)],
                             cwd=ROOT, env=_env(data_dir), capture_output=True, text=True, timeout=180)
    assert started.returncode == 0, started.stderr
    postmaster = embedded_pid(data_dir)
    assert postmaster is not None  # a CLI command started it and left it running

    dev = Dev(data_dir, tmp_path / "dev-1.log")
    dev.proc.send_signal(signal.SIGINT)
    assert dev.proc.wait(timeout=60) == 0, dev.output()
    assert [name for name, pid in dev.processes.items() if alive(pid)] == []
    assert embedded_pid(data_dir) == postmaster
    assert "stays up" in dev.output() and "make dev-stop" in dev.output()

    killed = Dev(data_dir, tmp_path / "dev-2.log")
    killed.proc.kill()  # no chance to clean up: its functions and router keep running
    killed.proc.wait(timeout=10)
    assert all(alive(pid) for pid in killed.processes.values())

    stopped = _dev_stop(data_dir)
    assert stopped.returncode == 0, stopped.stderr
    wait_for(lambda: not any(alive(pid) for pid in killed.processes.values()), what="the orphans to exit")
    assert embedded_pid(data_dir) is None and not alive(postmaster)
    assert "stopped the embedded PostgreSQL" in stopped.stdout
    assert "not running" in _dev_stop(data_dir).stdout  # nothing left to stop
