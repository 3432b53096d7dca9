"""The images' command, ``python -m shared.serve``, as a real process on 127.0.0.1.

The same check as `make image-test` on the bare process: the function serves, gunicorn writes no
control socket under $HOME (a read-only directory in the image), every line is JSON, SIGTERM ends it.
"""

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from tests.support.processes import ROOT, free_port
from tests.support.waiting import wait_for

pytestmark = pytest.mark.e2e


def _ready(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).status_code == 200
    except requests.RequestException:
        return False


@contextmanager
def _serving(env: dict[str, str], log_path: Path, ready_url: str, what: str) -> Iterator[subprocess.Popen]:
    """``python -m shared.serve`` with ``env``, its output in ``log_path``, until it answers ``ready_url``;
    terminated (SIGTERM) when the block ends."""
    with log_path.open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "shared.serve"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: proc.poll() is not None or _ready(ready_url), what=what)
        assert proc.poll() is None, log_path.read_text()
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_the_image_command_serves_without_a_gunicorn_control_socket(database_url, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}  # gunicorn's other place for the socket
    env |= {"HOME": str(home), "DATABASE_URL": database_url, "HOST": "127.0.0.1", "PORT": str(port), "THREADS": "2",
            "FUNCTION_TARGET": "api", "FUNCTION_SOURCE": "functions/api/main.py", "FUNCTION_SIGNATURE_TYPE": "http"}
    log_path = tmp_path / "serve.log"
    with _serving(env, log_path, f"http://127.0.0.1:{port}/readyz", "/readyz") as proc:
        assert list(home.iterdir()) == []  # no ~/.gunicorn: the control server is off
    assert proc.returncode == 0
    lines = log_path.read_text().splitlines()
    assert lines and all(json.loads(line)["severity"] == "INFO" for line in lines), lines


FROZEN_PROBE = '''
import gc


def frozen(request):
    return {"frozen": gc.get_freeze_count(), "tracked": len(gc.get_objects()), "enabled": gc.isenabled()}
'''


def test_the_worker_shares_the_masters_objects_frozen_out_of_the_garbage_collector(tmp_path):
    """gunicorn's master imports the function, then forks the worker: what the master built before the
    fork is frozen (``gc.freeze`` in the pre_fork hook), so the worker's collections leave those pages
    shared. A worker that collected them would report nothing frozen. The master imports the function
    with the collector off (``shared.serve.main``); the worker collects again."""
    source = tmp_path / "frozen.py"
    source.write_text(FROZEN_PROBE)
    port = free_port()
    env = {**os.environ, "HOME": str(tmp_path), "HOST": "127.0.0.1", "PORT": str(port), "THREADS": "2",
           "FUNCTION_TARGET": "frozen", "FUNCTION_SOURCE": str(source), "FUNCTION_SIGNATURE_TYPE": "http"}
    with _serving(env, tmp_path / "serve.log", f"http://127.0.0.1:{port}/", "the probe function"):
        counts = requests.get(f"http://127.0.0.1:{port}/", timeout=10).json()
    # Everything gunicorn, Flask and functions-framework built in the master: tens of thousands of objects,
    # the large share of what the worker tracks.
    assert counts["frozen"] > 10_000, counts
    assert counts["frozen"] > counts["tracked"], counts
    assert counts["enabled"] is True, counts
