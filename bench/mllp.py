"""MLLP throughput: ORU^R01 frames from python-hl7's client through the adapter process
(`patient-mgt mllp`) to the Pub/Sub emulator, counted when acknowledged (AA = Pub/Sub confirmed
the publish), on 1 connection and on 8 — beside the parse-only ceiling of what the adapter does
to each frame in this process (unwrap with `split_messages`, read the MSH, build the ACK)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from bench.oru import messages
from bench.procs import ROOT, free_port


def parse_only(raws: list[bytes], min_seconds: float = 3.0) -> dict:
    from shared.hl7 import split_messages  # noqa: PLC0415
    from shared.mllp.ack import build_ack, read_msh  # noqa: PLC0415

    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < min_seconds:
        for raw in raws:
            [message] = split_messages(raw)
            build_ack(read_msh(message), "AA")
        done += len(raws)
    seconds = time.perf_counter() - started
    return {"messages": done, "seconds": round(seconds, 2), "rate": round(done / seconds, 1)}


def _send(port: int, raws: list[bytes], acks: list[int], deadline: float) -> None:
    from hl7.client import MLLPClient  # noqa: PLC0415

    with MLLPClient("127.0.0.1", port) as client:
        for raw in raws:
            if time.perf_counter() > deadline:
                return
            if b"MSA|AA|" in client.send_message(raw):
                acks.append(1)


def point(port: int, raws: list[bytes], connections: int, duration: float) -> dict:
    per = [raws[i::connections] for i in range(connections)]
    acks: list[int] = []
    started = time.perf_counter()
    threads = [threading.Thread(target=_send, args=(port, part, acks, started + duration)) for part in per]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    return {"acked": len(acks), "seconds": round(seconds, 2), "rate": round(len(acks) / seconds, 1)}


def run(work: Path, connections: list[int], duration: float, log) -> dict:
    from shared.devtools.devrouter import emulator  # noqa: PLC0415

    sample = messages(500, "MLLPP", patients=200)
    ceiling = parse_only(sample)
    log(f"MLLP parse-only: {ceiling['rate']:.0f} frames/s")
    emulator_port, mllp_port = free_port(), free_port()
    emu = emulator.start("127.0.0.1", emulator_port, work / "logs" / "mllp-emulator.log")
    adapter = None
    try:
        emulator.Emulator(f"127.0.0.1:{emulator_port}", "patient-mgt-bench").create_topic("lis-bench")
        env = {**os.environ, "PUBSUB_EMULATOR_HOST": f"127.0.0.1:{emulator_port}", "GOOGLE_CLOUD_PROJECT": "patient-mgt-bench",
               "MLLP_TOPIC": "lis-bench", "MLLP_PORT": str(mllp_port), "MLLP_HOST": "127.0.0.1", "NO_GCE_CHECK": "true",
               "LOG_LEVEL": "WARNING"}
        with (work / "logs" / "mllp.log").open("wb") as out:
            adapter = subprocess.Popen([sys.executable, "-m", "shared.cli", "mllp"], cwd=ROOT, env=env, stdout=out,
                                       stderr=subprocess.STDOUT)
        _wait_port(mllp_port, adapter)
        point(mllp_port, messages(200, "MLLPW"), 2, 2.0)  # warm-up: client channel, batching thread
        points = {}
        for c in connections:
            result = point(mllp_port, messages(20000, f"MLL{c:02d}"), c, duration)
            points[str(c)] = result
            log(f"MLLP c={c}: {result['rate']:.0f} ACKed msg/s ({result['acked']} in {result['seconds']} s)")
        return {"parse_only": ceiling, "points": points}
    finally:
        if adapter is not None and adapter.poll() is None:
            adapter.terminate()
            adapter.wait(timeout=10)
        emulator.stop(emu)


def _wait_port(port: int, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    import socket  # noqa: PLC0415

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("the MLLP adapter exited while starting")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("the MLLP adapter did not listen in time")
