"""A port another worker took between our probe and the server's bind: start_function picks another."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import requests

from tests.support import processes

pytestmark = pytest.mark.e2e


def test_a_taken_port_is_replaced_and_the_process_is_really_ours(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        real_free_port = processes.free_port
        handed = iter([taken])
        monkeypatch.setattr(processes, "free_port", lambda: next(handed, None) or real_free_port())
        proc = processes.start_function("notify", {}, tmp_path)
        try:
            assert proc.port != taken
            assert proc.proc.poll() is None
            # It answers on its own port (a CloudEvent function: a bare GET is not an event).
            assert requests.get(proc.url + "/", timeout=5).status_code in (400, 405, 415)
        finally:
            proc.stop()
    assert (tmp_path / f"notify-{taken}.log").exists(), "the first attempt ran and was given up"
