"""`make dev`: the whole system on one machine.

Starts (or attaches to) the embedded PostgreSQL unless DATABASE_URL is set, migrates, prints a
fresh admin API key, and runs each function as its own functions-framework process on
127.0.0.1 (api 8080, lis_consumer 8081, notify 8082, jobs 8083) with reload on code change.
Ctrl-C stops every process it started; the data in DATA_DIR stays for the next run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from shared.settings import PROJECT_ROOT, get_settings

FUNCTIONS = {"api": 8080, "lis_consumer": 8081, "notify": 8082, "jobs": 8083}


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]


def _say(text: str) -> None:
    print(f"[dev] {text}", flush=True)


def prepare_database() -> str:
    from shared.db import get_engine, resolve_database_url  # noqa: PLC0415
    from shared.migrate import migrate  # noqa: PLC0415

    url = resolve_database_url()
    os.environ["DATABASE_URL"] = url
    applied = migrate(get_engine())
    _say(f"database ready ({'embedded PostgreSQL under ' + str(get_settings().data_dir) if not get_settings().database_url else 'DATABASE_URL'}); "
         f"{len(applied)} migration(s) applied")
    return url


def create_dev_admin_key() -> str:
    from shared.auth import create_api_key  # noqa: PLC0415
    from shared.db import unit_of_work  # noqa: PLC0415

    with unit_of_work() as uow:
        _key, token = create_api_key(uow, f"dev-admin-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}", ["admin"])
    return token


def start_function(name: str, port: int, env: dict[str, str], reload: bool) -> Child:
    bin_dir = Path(sys.executable).parent
    signature = "http" if name == "api" else "cloudevent"
    cmd = [str(bin_dir / "functions-framework"), "--source", str(PROJECT_ROOT / "functions" / name / "main.py"),
           "--target", name, "--signature-type", signature, "--host", "127.0.0.1", "--port", str(port)]
    if reload:
        cmd.append("--debug")  # Flask's server with the reloader: restarts on code change
    proc = subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=env)
    return Child(name, proc)


def run(reload: bool = True, extra_env: dict[str, str] | None = None) -> int:
    url = prepare_database()
    token = create_dev_admin_key()
    env = {**os.environ, "DATABASE_URL": url, "PYTHONUNBUFFERED": "1", "NO_GCE_CHECK": "true", **(extra_env or {})}
    env.setdefault("NOTIFY_PROVIDER", "console")
    children = [start_function(name, port, {**env, "FUNCTION_TARGET": name}, reload) for name, port in FUNCTIONS.items()]
    for name, port in FUNCTIONS.items():
        _say(f"{name:<13} http://127.0.0.1:{port}")
    _say("admin API key (use as: Authorization: Bearer <key>):")
    print(token, flush=True)

    stopping = False

    def stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        while not stopping:
            for child in children:
                if child.proc.poll() is not None:
                    _say(f"{child.name} exited with {child.proc.returncode}; stopping")
                    stopping = True
            time.sleep(0.5)
    finally:
        for child in children:
            if child.proc.poll() is None:
                child.proc.terminate()
        for child in children:
            try:
                child.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.proc.kill()
        _say("stopped")
    return 0
