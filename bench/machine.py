"""What the numbers were measured on (recorded with every run: the machines are shared and noisy)."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata

import psutil
import sqlalchemy as sa


def _cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(pkg: str) -> str | None:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return None


def describe(url: str, wrk: str | None) -> dict:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        pg = conn.execute(sa.text("SHOW server_version")).scalar_one()
        pg_settings = {k: conn.execute(sa.text(f"SHOW {k}")).scalar_one()
                       for k in ("shared_buffers", "synchronous_commit", "fsync", "max_connections")}
    engine.dispose()
    wrk_version = None
    if wrk:
        out = subprocess.run([wrk, "--version"], capture_output=True, text=True)
        wrk_version = (out.stdout or out.stderr).splitlines()[0] if (out.stdout or out.stderr) else None
    freq = psutil.cpu_freq()
    return {
        "cpu_model": _cpu_model(),
        "cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu_mhz": round(freq.current) if freq else None,
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "kernel": platform.release(),
        "os": _os_name(),
        "python": platform.python_version(),
        "postgresql": pg,
        "postgresql_settings": pg_settings,
        "functions_framework": _version("functions-framework"),
        "gunicorn": _version("gunicorn"),
        "pg8000": _version("pg8000"),
        "sqlalchemy": _version("SQLAlchemy"),
        "load_generator": wrk_version or "bench.loadgen (Python, multi-process)",
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
    }


def _os_name() -> str:
    try:
        for line in open("/etc/os-release"):
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return platform.platform()
