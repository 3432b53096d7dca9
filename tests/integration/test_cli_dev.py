"""`patient-mgt dev` with a port taken: one clear line, exit 1, and nothing created."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from tests.support.database import admin_url, create_database, drop_database

BIN = Path(sys.executable).parent / "patient-mgt"


def test_a_taken_port_is_one_line_before_the_database_or_a_key_is_made(tmp_path: Path) -> None:
    admin = admin_url()
    url = create_database(admin, prefix="pmdev")  # empty: not migrated
    try:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            base = 20000 + port % 20000  # some other base; only the notify port is pinned to the taken one
            out = subprocess.run(
                [str(BIN), "dev", "--no-emulator", "--port-base", str(base), "--notify-port", str(port)],
                capture_output=True, text=True, timeout=60,
                env={**os.environ, "DATABASE_URL": url, "DATA_DIR": str(tmp_path / "data")})
        assert out.returncode == 1, out.stderr
        lines = out.stderr.strip().splitlines()
        assert lines == [lines[0]] and lines[0].startswith("[dev] cannot start: ")
        assert f"127.0.0.1:{port} (notify)" in lines[0] and "Traceback" not in out.stdout + out.stderr
        assert "pmk_" not in out.stdout, "no admin key was printed"
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            assert sa.inspect(conn).get_table_names() == [], "the database was not migrated (no key could be stored)"
        engine.dispose()
        assert not (tmp_path / "data").exists(), "no embedded PostgreSQL, no outbox, no stack file"
    finally:
        drop_database(admin, url)
