"""Real functions-framework processes on 127.0.0.1 for end-to-end tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import requests

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A port free now: only until someone binds it (another worker's process may, the next moment).
    For a port that must stay unreachable, use ``closed_port``."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def closed_port() -> Iterator[int]:
    """A loopback port that refuses every connection while the block runs, and that nobody can take.

    The socket is bound but never listens: a connection gets RST (refused), and since it does not set
    SO_REUSEADDR no other process can bind the port (with or without that option). A port merely probed
    free (``free_port``) is not closed: with tests in parallel, another worker's process may bind it and
    then receive what was meant to fail — a Pub/Sub emulator's pushes to a subscriber "that is down"
    once reached another worker's lis_consumer and were stored in its database.
    """
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]


@dataclass
class FunctionProcess:
    target: str
    port: int
    proc: subprocess.Popen[bytes]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int | None = None) -> None:
        if self.proc.poll() is None:
            if sig is not None:
                self.proc.send_signal(sig)
            else:
                self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


def start_function(
    target: str,
    env: Mapping[str, str],
    log_dir: Path,
    *,
    port: int | None = None,
    ready_path: str | None = None,
    timeout: float = 30.0,
) -> FunctionProcess:
    """Start the function as the container does (functions-framework through ``python -m shared.serve``)
    and wait until its port answers.

    A free port is only free until someone binds it: with tests running in parallel (pytest-xdist)
    another worker may take it between our probe and the server's bind. So the process counts as
    started only once *it* listens on the port (not whoever answers there), and a chosen port
    (``port=None``) is chosen again when the server reports the address in use.
    """
    for _attempt in range(3 if port is None else 1):
        try:
            return _start_function(target, env, log_dir, port=port or free_port(), ready_path=ready_path, timeout=timeout)
        except PortTaken:
            continue
    raise RuntimeError(f"{target}: no free port after 3 attempts")


class PortTaken(RuntimeError):
    pass


def _listens(pid: int, port: int) -> bool:
    """Whether process ``pid`` itself holds a listening socket on ``port`` (gunicorn's master does)."""
    return any(c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port
               for c in psutil.Process(pid).net_connections(kind="tcp"))


def _start_function(
    target: str, env: Mapping[str, str], log_dir: Path, *, port: int, ready_path: str | None, timeout: float,
) -> FunctionProcess:
    source = ROOT / "functions" / target / "main.py"
    signature = "http" if target == "api" else "cloudevent"
    # The public URL is where the tests reach the process (FHIR links are built on it), unless given.
    full_env = {**os.environ, "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}", **env, "PYTHONUNBUFFERED": "1"}
    log_path = log_dir / f"{target}-{port}.log"
    log_file = log_path.open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "shared.serve", "--source", str(source), "--target", target,
         "--signature-type", signature, "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT, env=full_env, stdout=log_file, stderr=subprocess.STDOUT,
    )
    fp = FunctionProcess(target=target, port=port, proc=proc, log_path=log_path, env=dict(env))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if "Address already in use" in fp.logs():  # gunicorn retries the bind a few times: do not wait for it
            fp.stop()
            raise PortTaken(port)
        if proc.poll() is not None:
            raise RuntimeError(f"{target} exited early:\n{fp.logs()}")
        try:
            if _listens(proc.pid, port) and (
                not ready_path or requests.get(fp.url + ready_path, timeout=1).status_code == 200
            ):
                return fp
        except (OSError, requests.RequestException, psutil.Error):
            pass
        time.sleep(0.1)
    fp.stop()
    raise RuntimeError(f"{target} did not become ready:\n{fp.logs()}")
