"""`make dev`'s reloading server (shared.serve --debug): Werkzeug's debugger is never reachable, and what it
logs is our JSON without colour codes or request lines (whose query strings can be patient data)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from shared.devtools.devrun import function_command
from tests.support.processes import ROOT, free_port

pytestmark = pytest.mark.e2e


def test_the_reloading_api_has_no_debugger_and_logs_plain_json(database_url: str, tmp_path: Path) -> None:
    port = free_port()
    log_path = tmp_path / "devserve.log"
    env = {"DATABASE_URL": database_url, "PYTHONUNBUFFERED": "1", "NO_GCE_CHECK": "true", "FUNCTION_TARGET": "api"}
    import os  # noqa: PLC0415

    with log_path.open("wb") as log:
        proc = subprocess.Popen(function_command("api", port, reload=True), cwd=ROOT, env={**os.environ, **env},
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(url + "/healthz", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)
        # The debugger's console page and its resources (served only when it is active). /console is
        # also the operator console's path (issue 18): it must be that, never Werkzeug's console.
        console = requests.get(url + "/console", timeout=5)
        assert "__debugger__" not in console.text and "Interactive Console" not in console.text
        resource = requests.get(url + "/", params={"__debugger__": "yes", "cmd": "resource", "f": "debugger.js"}, timeout=5)
        assert "javascript" not in resource.headers.get("Content-Type", "")
        assert requests.get(url + "/patients", params={"name": "Qvorstrand"}, timeout=5).status_code == 401
        time.sleep(0.5)
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=10)
    text = log_path.read_text(errors="replace")
    assert "Debugger is active" not in text and "Debugger PIN" not in text
    assert "\x1b[" not in text, "no ANSI colour codes"
    assert "Qvorstrand" not in text, "no request line with its query string"
    lines = [line for line in text.splitlines() if line.startswith("{")]
    assert lines and all(json.loads(line)["severity"] for line in lines)
    assert sys.executable in function_command("api", port, reload=True)
