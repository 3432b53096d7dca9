"""An embedded PostgreSQL (pgserver) under DATA_DIR for `make dev` and for tests without a server.

pgserver ships PostgreSQL 16 binaries in its wheel. We connect over its Unix socket; the URL is
built from the socket path (``?unix_sock=<dir>/.s.PGSQL.5432``) because pg8000 cannot use the
libpq-style URI pgserver reports. The server keeps running across processes (``cleanup_mode=None``)
so a second `make dev` reuses the data.
"""

from __future__ import annotations

import os
from pathlib import Path


def start_embedded(data_dir: Path) -> str:
    """Start (or attach to) the embedded server and return a pg8000 SQLAlchemy URL for database ``postgres``."""
    pgdata = data_dir / "pg"
    pgdata.mkdir(parents=True, exist_ok=True)
    runtime = data_dir / "run"
    runtime.mkdir(parents=True, exist_ok=True)
    runtime.chmod(0o700)
    # pgserver (through platformdirs) needs a runtime dir before it is imported.
    os.environ.setdefault("XDG_RUNTIME_DIR", str(runtime))
    import pgserver  # noqa: PLC0415  (heavy, and only needed here)

    server = pgserver.get_server(pgdata, cleanup_mode=None)
    info = server.get_postmaster_info()
    if info.socket_dir is None:  # pgserver fell back to TCP on localhost
        return f"postgresql+pg8000://postgres@127.0.0.1:{info.port}/postgres"
    return f"postgresql+pg8000://postgres@/postgres?unix_sock={info.socket_dir}/.s.PGSQL.{info.port}"
