"""Driving load from a separate process: wrk (Debian's package, installed when missing and root) with
``bench/lua/scenario.lua``, or ``bench.loadgen`` when wrk cannot be had."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "lua" / "scenario.lua"


def ensure_wrk(log) -> str | None:
    """Path of wrk; installs Debian's package when missing and root. None: use the Python generator
    (also when BENCH_NO_WRK is set)."""
    if os.environ.get("BENCH_NO_WRK"):
        return None
    found = shutil.which("wrk")
    if not found and os.geteuid() == 0 and shutil.which("apt-get"):
        log("wrk missing: apt-get install -y wrk")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = ["apt-get", "install", "-y", "-q", "wrk"]
        if subprocess.run(install, env=env, capture_output=True, timeout=300).returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, timeout=300)
            subprocess.run(install, env=env, capture_output=True, timeout=300)
        found = shutil.which("wrk")
    if not found:
        log("wrk unavailable: using the Python load generator (bench.loadgen)")
    return found


def _parse(stdout: str) -> dict:
    for line in stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            result = json.loads(line[len("BENCH_JSON "):])
            result["rps"] = round(result["requests"] / result["duration_s"], 1) if result["duration_s"] else 0.0
            ok = sum(n for code, n in result["statuses"].items() if code.startswith("2"))
            result["ok"] = ok
            result["ok_rps"] = round(ok / result["duration_s"], 1) if result["duration_s"] else 0.0
            return result
    raise RuntimeError(f"load generator printed no result:\n{stdout[-2000:]}")


def http_point(wrk: str | None, port: int, mode: str, concurrency: int, duration: float, *,
               token: str | None = None, items: Path | None = None) -> dict:
    """One measurement point: ``mode`` at ``concurrency`` for ``duration`` seconds."""
    if wrk:
        threads = max(1, min(2, concurrency))
        cmd = [wrk, "-t", str(threads), "-c", str(concurrency), "-d", f"{max(1, round(duration))}s", "--timeout", "10s",
               "-s", str(SCRIPT), f"http://127.0.0.1:{port}", "--", mode, str(items) if items else "-", uuid.uuid4().hex[:8]]
        env = {**os.environ, **({"BENCH_TOKEN": token} if token else {})}
    else:
        cmd = [sys.executable, "-m", "bench.loadgen", "--port", str(port), "--mode", mode, "--concurrency", str(concurrency),
               "--duration", str(duration)]
        cmd += ["--items", str(items)] if items else []
        cmd += ["--token", token] if token else []
        env = dict(os.environ)
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=duration + 120, cwd=HERE.parent)
    if done.returncode != 0:
        raise RuntimeError(f"load generator failed ({done.returncode}): {done.stderr[-2000:]}")
    result = _parse(done.stdout)
    result["generator"] = "wrk" if wrk else "bench.loadgen"
    return result


def fixed_point(port: int, bodies: Path, concurrency: int, path: str = "/",
                content_type: str = "application/json") -> dict:
    """POST every line of ``bodies`` once, ``concurrency`` at a time; rate = bodies / wall time."""
    cmd = [sys.executable, "-m", "bench.loadgen", "--port", str(port), "--mode", "fixed", "--bodies", str(bodies),
           "--concurrency", str(concurrency), "--path", path, "--content-type", content_type]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=HERE.parent)
    if done.returncode != 0:
        raise RuntimeError(f"load generator failed ({done.returncode}): {done.stderr[-2000:]}")
    result = _parse(done.stdout)
    result["generator"] = "bench.loadgen"
    return result


def db_point(url: str, mode: str, concurrency: int, duration: float, ids: Path | None = None) -> dict:
    """The database's ceiling at ``concurrency``: raw pg8000 ``insert`` (INSERT+COMMIT) or ``select`` (PK)."""
    cmd = [sys.executable, "-m", "bench.dbload", "--url", url, "--mode", mode, "--concurrency", str(concurrency),
           "--duration", str(duration)] + (["--ids", str(ids)] if ids else [])
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 120, cwd=HERE.parent)
    if done.returncode != 0:
        raise RuntimeError(f"dbload failed ({done.returncode}): {done.stderr[-2000:]}")
    result = _parse(done.stdout)
    result["generator"] = "bench.dbload"
    return result


def anatomy(url: str, function: str, **kwargs: str) -> dict:
    """Per-request wall time, CPU time and SQL statements of ``function`` (see bench.anatomy)."""
    cmd = [sys.executable, "-m", "bench.anatomy", "--url", url, "--function", function]
    for key, value in kwargs.items():
        cmd += [f"--{key}", str(value)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=HERE.parent)
    if done.returncode != 0:
        raise RuntimeError(f"anatomy failed ({done.returncode}): {done.stderr[-2000:]}")
    return json.loads(next(line for line in done.stdout.splitlines() if line.startswith("BENCH_JSON "))[11:])
