"""An embedded PostgreSQL (pgserver) under DATA_DIR for `make dev` and for tests without a server.

pgserver ships PostgreSQL 16 binaries in its wheel. We connect over its Unix socket; the URL is
built from the socket path (``?unix_sock=<dir>/.s.PGSQL.5432``) because pg8000 cannot use the
libpq-style URI pgserver reports. The server outlives the process that started it
(``cleanup_mode=None``): a CLI command attaches to the server `make dev` runs. `make dev` stops it
when it exits if it started it (``stop_embedded``); `make dev-stop` stops it in any case.
"""

from __future__ import annotations

import os
from pathlib import Path


def _pgdata(data_dir: Path) -> Path:
    return data_dir / "pg"


def _prepare_import(data_dir: Path) -> None:
    runtime = data_dir / "run"
    runtime.mkdir(parents=True, exist_ok=True)
    runtime.chmod(0o700)
    # pgserver (through platformdirs) needs a runtime dir before it is imported.
    os.environ.setdefault("XDG_RUNTIME_DIR", str(runtime))


def start_embedded(data_dir: Path) -> str:
    """Start (or attach to) the embedded server and return a pg8000 SQLAlchemy URL for database ``postgres``."""
    pgdata = _pgdata(data_dir)
    pgdata.mkdir(parents=True, exist_ok=True)
    _prepare_import(data_dir)
    import pgserver  # noqa: PLC0415  (heavy, and only needed here)

    server = pgserver.get_server(pgdata, cleanup_mode=None)
    info = server.get_postmaster_info()
    if info.socket_dir is None:  # pgserver fell back to TCP on localhost
        return f"postgresql+pg8000://postgres@127.0.0.1:{info.port}/postgres"
    return f"postgresql+pg8000://postgres@/postgres?unix_sock={info.socket_dir}/.s.PGSQL.{info.port}"


def embedded_pid(data_dir: Path) -> int | None:
    """The postmaster's pid when the embedded server under ``data_dir`` is running, else None."""
    from shared.pids import alive  # noqa: PLC0415

    try:
        pid = int((_pgdata(data_dir) / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if alive(pid) else None


def stop_embedded(data_dir: Path) -> bool:
    """Stop the embedded server (``pg_ctl stop``, fast mode: open sessions are ended). False if none ran."""
    if embedded_pid(data_dir) is None:
        return False
    _prepare_import(data_dir)
    import pgserver  # noqa: PLC0415

    user = None
    if os.geteuid() == 0:  # pgserver runs PostgreSQL as its own user then (pg_ctl refuses root) ...
        from pgserver.utils import ensure_prefix_permissions  # noqa: PLC0415

        user = "pgserver"
        ensure_prefix_permissions(_pgdata(data_dir))  # ... which must reach the data dir, as when it started it
    pgserver.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=_pgdata(data_dir), user=user)  # type: ignore[attr-defined]
    return True
