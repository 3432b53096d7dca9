"""Function processes started the way production starts them, and their memory.

The environment of each function comes from the Knative manifests themselves (the shared ConfigMap
plus the Service's own env: WORKERS, THREADS, DB_POOL_SIZE, …), so the benchmark measures the
gunicorn settings that are deployed, not a guess. Local-only overrides: DATABASE_URL, DATA_DIR,
the console notification provider, and no push-token check.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import yaml

ROOT = Path(__file__).resolve().parents[1]
HELLO = "hello"
# Settings that only make sense in a cluster (Pub/Sub push tokens, AWS) are dropped locally.
_DROP = {"PUSH_AUDIENCE", "PUSH_SERVICE_ACCOUNT", "AWS_ENDPOINT_URL", "EVENT_SINK", "K_SINK"}


def compile_project() -> None:
    """Write the bytecode of the project's own modules, as the image has it (its venv installs the
    project from a wheel, which pip compiles, and the Dockerfile compiles functions/). A checkout run
    with PYTHONDONTWRITEBYTECODE=1 (set in the image, and on these machines) would otherwise compile
    every module of shared/ at every start, and cold starts would measure the compiler."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", "-j", "0", "shared", "functions", "bench"],
                   cwd=ROOT, check=True, capture_output=True, timeout=300)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _manifest_docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if isinstance(d, dict)]


def production_env(target: str) -> dict[str, str]:
    """ConfigMap data + the Service's literal env values for ``target`` (hello: the api's sizing)."""
    env: dict[str, str] = {}
    for doc in _manifest_docs(ROOT / "knative" / "platform" / "config.yaml"):
        if doc.get("kind") == "ConfigMap":
            env.update({k: str(v) for k, v in (doc.get("data") or {}).items()})
    wanted = "api" if target == HELLO else target
    for doc in _manifest_docs(ROOT / "knative" / "app" / "services.yaml"):
        if doc.get("kind") != "Service":
            continue
        container = doc["spec"]["template"]["spec"]["containers"][0]
        values = {e["name"]: str(e["value"]) for e in container.get("env", []) if "value" in e}
        if values.get("FUNCTION_TARGET") == wanted:
            env.update(values)
            break
    else:
        raise RuntimeError(f"no Knative Service runs FUNCTION_TARGET={wanted}")
    for key in _DROP:
        env.pop(key, None)
    if target == HELLO:
        env.update({"FUNCTION_TARGET": HELLO, "FUNCTION_SIGNATURE_TYPE": "http",
                    "FUNCTION_SOURCE": "bench/hello/main.py"})
    env["NOTIFY_PROVIDER"] = "console"
    return env


@dataclass
class Fn:
    target: str
    port: int
    proc: subprocess.Popen[bytes]
    log_path: Path
    started_at: float  # time.perf_counter() just before the launch

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def tree(self) -> list[psutil.Process]:
        try:
            parent = psutil.Process(self.proc.pid)
            return [parent, *parent.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def memory(self) -> dict[str, float]:
        """MB: ``rss`` of the largest process (the gunicorn worker that serves) and ``pss`` of the
        whole tree (shared pages counted once — what the container's memory limit sees)."""
        rss, pss = 0, 0
        for p in self.tree():
            try:
                info = p.memory_full_info()
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            rss = max(rss, info.rss)
            pss += getattr(info, "pss", info.rss)
        return {"rss_mb": round(rss / 2**20, 1), "pss_mb": round(pss / 2**20, 1)}

    def worker_pid(self, timeout: float = 30.0) -> int:
        """The gunicorn worker that serves (WORKERS=1: the one process of the tree running the app's code;
        the master only supervises). The newest process of the tree when there are several."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            tree = self.tree()
            if len(tree) > 1:
                return max(tree[1:], key=lambda p: p.create_time()).pid
            time.sleep(0.05)
        raise RuntimeError(f"{self.target}: no worker process within {timeout:.0f} s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


def launch(target: str, env: dict[str, str], log_dir: Path, *, port: int | None = None,
           prefix: list[str] | None = None) -> Fn:
    """Start ``target`` as the container does (functions-framework through ``python -m shared.serve``) and
    return at once (cold start is timed by the caller). ``prefix``: a command that runs the server as its
    child (``py-spy record … --``: a profile from the first instruction)."""
    port = port or free_port()
    source = env.get("FUNCTION_SOURCE") or f"functions/{target}/main.py"
    signature = env.get("FUNCTION_SIGNATURE_TYPE") or "http"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{target}-{port}.log"
    full_env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
    started = time.perf_counter()
    proc = subprocess.Popen(
        [*(prefix or []), sys.executable, "-m", "shared.serve", "--source", str(ROOT / source), "--target", env.get("FUNCTION_TARGET", target),
         "--signature-type", signature, "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT, env=full_env, stdout=log_path.open("wb"), stderr=subprocess.STDOUT,
    )
    return Fn(target=target, port=port, proc=proc, log_path=log_path, started_at=started)


def launch_sink(log_dir: Path) -> Fn:
    """Start the bench's event sink (``bench.sink``: the broker's stand-in) and return at once."""
    port = free_port()
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"sink-{port}.log"
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "bench.sink", "--host", "127.0.0.1", "--port", str(port)],
                            cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"}, stdout=log_path.open("wb"),
                            stderr=subprocess.STDOUT)
    return Fn(target="sink", port=port, proc=proc, log_path=log_path, started_at=started)


def wait_until(fn: Fn, probe, timeout: float = 60.0, interval: float = 0.005) -> float:
    """Poll ``probe(fn)`` until it returns True; seconds since the launch. Raises if the process dies."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if fn.proc.poll() is not None:
            raise RuntimeError(f"{fn.target} exited with {fn.proc.returncode}: {fn.log_path.read_text(errors='replace')[-1500:]}")
        try:
            if probe(fn):
                return time.perf_counter() - fn.started_at
        except OSError:
            pass
        time.sleep(interval)
    raise RuntimeError(f"{fn.target} did not answer within {timeout:.0f} s: {fn.log_path.read_text(errors='replace')[-1500:]}")


class MemorySampler:
    """Peak memory of a function while a block of load runs (sampled every 200 ms in a thread)."""

    def __init__(self, fn: Fn, interval: float = 0.2) -> None:
        self.fn = fn
        self.interval = interval
        self.peak = {"rss_mb": 0.0, "pss_mb": 0.0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            mem = self.fn.memory()
            for key, value in mem.items():
                self.peak[key] = max(self.peak[key], value)
            self._stop.wait(self.interval)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
