"""The images' command, ``python -m shared.serve``, as a real process on 127.0.0.1.

The same check as `make image-test` on the bare process: the function serves, gunicorn writes no
control socket under $HOME (a read-only directory in the image), every line is JSON, SIGTERM ends it.
"""

import json
import os
import subprocess
import sys

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


def test_the_image_command_serves_without_a_gunicorn_control_socket(database_url, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}  # gunicorn's other place for the socket
    env |= {"HOME": str(home), "DATABASE_URL": database_url, "HOST": "127.0.0.1", "PORT": str(port), "THREADS": "2",
            "FUNCTION_TARGET": "api", "FUNCTION_SOURCE": "functions/api/main.py", "FUNCTION_SIGNATURE_TYPE": "http"}
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "shared.serve"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: proc.poll() is not None or _ready(f"http://127.0.0.1:{port}/readyz"), what="/readyz")
        assert proc.poll() is None, log_path.read_text()
        assert list(home.iterdir()) == []  # no ~/.gunicorn: the control server is off
    finally:
        proc.terminate()
        code = proc.wait(timeout=30)
    assert code == 0
    lines = log_path.read_text().splitlines()
    assert lines and all(json.loads(line)["severity"] == "INFO" for line in lines), lines
