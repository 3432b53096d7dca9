"""`make dev`'s ports: one base moves them all, a flag moves one, and every one is checked up front."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import pytest

from shared.devtools.devrun import (
    DevStack,
    PortsInUse,
    StackConfig,
    dev_ports,
    function_command,
    listens,
    wait_for_port,
)


def test_the_base_lays_out_every_process_and_a_flag_moves_one() -> None:
    assert dev_ports(8080) == {"api": 8080, "lis_consumer": 8081, "notify": 8082, "jobs": 8083,
                               "pubsub-emulator": 8085, "router": 8090, "mllp": 2575}
    moved = dev_ports(9100, router=9999, pubsub_emulator=9998, mllp=9997)
    assert moved == {"api": 9100, "lis_consumer": 9101, "notify": 9102, "jobs": 9103,
                     "pubsub-emulator": 9998, "router": 9999, "mllp": 9997}


def test_dev_port_base_comes_from_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.settings import Settings  # noqa: PLC0415

    monkeypatch.setenv("DEV_PORT_BASE", "9300")
    assert Settings().dev_port_base == 9300
    monkeypatch.setenv("DEV_PORT_BASE", "80")
    with pytest.raises(ValueError, match="dev_port_base"):
        Settings()


def test_every_taken_port_is_named_in_one_line() -> None:
    with socket.socket() as a, socket.socket() as b:
        a.bind(("127.0.0.1", 0))
        a.listen()
        b.bind(("127.0.0.1", 0))
        b.listen()
        ports = {"api": a.getsockname()[1], "lis_consumer": _free(), "notify": _free(), "jobs": _free()}
        router = b.getsockname()[1]
        stack = DevStack(StackConfig(ports=ports, router_port=router, use_emulator=False), "")
        with pytest.raises(PortsInUse) as info:
            stack.check_ports()
    message = str(info.value)
    assert info.value.taken == [("api", ports["api"]), ("router", router)]
    assert "\n" not in message
    assert f"127.0.0.1:{ports['api']} (api)" in message and "(router) are in use" in message
    assert "DEV_PORT_BASE" in message and "--api-port" in message


def test_reloading_functions_never_run_werkzeugs_debugger() -> None:
    reloading = function_command("api", 8080, reload=True)
    assert reloading[1:3] == ["-m", "shared.serve"] and reloading[-1] == "--debug"  # shared.serve: no debugger
    plain = function_command("notify", 8082, reload=False)
    assert plain[1:3] == ["-m", "shared.serve"] and "--debug" not in plain
    assert plain[plain.index("--signature-type") + 1] == "cloudevent"


def _free() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_stop_ends_what_delivers_before_what_it_delivers_to(tmp_path) -> None:  # noqa: ANN001
    """The emulator and the router retry pushes: a function stopped before them frees a port they would
    keep pushing to, and another process (a parallel test worker's) may take it meanwhile."""
    from shared.devtools.devrun import Child  # noqa: PLC0415

    stopped: list[str] = []

    class Recorded(Child):
        def stop(self) -> None:
            stopped.append(self.name)

    stack = DevStack(StackConfig(ports={}, router_port=1, state_path=tmp_path / "stack.json"), "postgresql://x/y")
    stack.children = [Recorded(name, None) for name in  # type: ignore[arg-type]
                      ("pubsub-emulator", "router", "api", "lis_consumer", "notify", "jobs", "mllp")]
    stack.stop()
    assert stopped[:3] == ["mllp", "pubsub-emulator", "router"]
    assert sorted(stopped[3:]) == ["api", "jobs", "lis_consumer", "notify"] and stack.children == []


def _child(code: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def test_a_port_another_process_holds_is_not_taken_for_the_child_listening() -> None:
    """The race that hung a stack: the port chosen for the router was bound first by another process
    (the stack's own emulator, or another worker's stack); the router died on EADDRINUSE while
    connecting to the port still succeeded, and every event went to the other process."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        child = _child("import time; time.sleep(30)")  # never binds: it could not
        try:
            started = time.monotonic()
            with pytest.raises(PortsInUse) as info:
                wait_for_port(port, child, "router", timeout=20)
            assert info.value.taken == [("router", port)] and time.monotonic() - started < 10
            assert child.poll() is None and listens(child, port) is False
        finally:
            child.kill()
            child.wait()


def test_the_child_that_listens_on_its_port_is_waited_for() -> None:
    port = _free()
    child = _child("import socket, time\n"
                   "time.sleep(0.5)\n"  # not listening at first: waited for, not refused
                   f"s = socket.create_server(('127.0.0.1', {port}))\n"
                   "time.sleep(30)")
    try:
        wait_for_port(port, child, "api", timeout=20)
        assert listens(child, port) is True
    finally:
        child.kill()
        child.wait()

