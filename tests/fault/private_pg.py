"""A private PostgreSQL cluster that a fault test may stop, crash and restart.

The shared server on 127.0.0.1:5432 serves every other test running at the same time, so outage
tests never touch it: they initdb their own cluster in a temporary directory, on a free port, with
the PostgreSQL binaries that the ``pgserver`` test dependency ships (PostgreSQL 16), or the
machine's own (/usr/lib/postgresql/*/bin) when that package is missing. PostgreSQL refuses to run
as root, so as root the cluster runs as an unprivileged system user.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psutil
import sqlalchemy as sa

from tests.support.processes import free_port


def system_bin_dir() -> Path | None:
    """The machine's own PostgreSQL binaries (Debian's postgresql package), built with TLS as
    pgserver's are not; None when there are none."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(found[-1]).parent if found else None


def _bin_dir() -> Path:
    spec = importlib.util.find_spec("pgserver")
    if spec and spec.submodule_search_locations:
        candidate = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
        if (candidate / "pg_ctl").exists():
            return candidate
    found = system_bin_dir()
    if found:
        return found
    raise RuntimeError("no PostgreSQL binaries: install the test extra (pgserver) or postgresql")


def _run_user() -> str | None:
    if os.geteuid() != 0:
        return None
    for name in ("pgserver", "postgres"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    # Two xdist workers may both get here: useradd's exit code 9 means the other one created it first.
    made = subprocess.run(["useradd", "--system", "--no-create-home", "pgserver"], capture_output=True)
    if made.returncode not in (0, 9):
        raise RuntimeError(f"useradd pgserver failed with {made.returncode}: {made.stderr.decode(errors='replace')}")
    return "pgserver"


class PrivatePostgres:
    """initdb + pg_ctl around one throwaway cluster listening on 127.0.0.1:<free port>."""

    def __init__(self, bin_dir: Path | None = None) -> None:
        self.bin = bin_dir or _bin_dir()
        self.user = _run_user()
        self.root = Path(tempfile.mkdtemp(prefix="pm-fault-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self.port = free_port()
        if self.user:
            entry = pwd.getpwnam(self.user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self.root.chmod(0o755)

    def _run(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(self.bin / args[0]), *args[1:]], check=check, capture_output=True, text=True,
                              timeout=timeout, user=self.user, cwd=self.root)

    def init(self) -> PrivatePostgres:
        self._run("initdb", "-D", str(self.data), "--auth=trust", "-U", "postgres", "--encoding=UTF8",
                  "--no-sync", "--no-instructions")
        return self

    def enable_tls(self) -> None:
        """Offer TLS (``ssl=on``) from the next start, with a self-signed certificate for localhost.
        Needs binaries built with TLS (``system_bin_dir``; pgserver's are not)."""
        from tests.support.certs import certificate, write_pem  # noqa: PLC0415 — only TLS tests need cryptography

        for path in write_pem(self.data / "server", *certificate("localhost")):
            path.chmod(0o600)  # PostgreSQL refuses a key others can read
            if self.user:
                entry = pwd.getpwnam(self.user)
                os.chown(path, entry.pw_uid, entry.pw_gid)
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write("\nssl = on\n")

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} -c max_connections=100"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "30", "start")
        self.wait_ready()

    def stop(self, mode: str = "fast") -> None:
        """``fast``: clean shutdown, sessions terminated; ``immediate``: a crash (WAL recovery on start)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "30", "stop", check=False)

    def processes(self) -> list[psutil.Process]:
        """The postmaster and its children (backends, checkpointer, ...)."""
        pid_file = self.data / "postmaster.pid"
        if not pid_file.exists():
            return []
        master = psutil.Process(int(pid_file.read_text().split()[0]))
        return [master, *master.children(recursive=True)]

    def freeze(self) -> None:
        """SIGSTOP every server process: connections stay open but nothing answers (a hung server)."""
        for proc in self.processes():
            proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        for proc in self.processes():
            proc.send_signal(signal.SIGCONT)

    def is_running(self) -> bool:
        return self._run("pg_ctl", "-D", str(self.data), "status", check=False).returncode == 0

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    pass
                engine = sa.create_engine(self.url("postgres"))
                with engine.connect() as conn:
                    conn.execute(sa.text("SELECT 1"))
                engine.dispose()
                return
            except Exception:  # noqa: BLE001 — still starting (connection refused, "starting up")
                time.sleep(0.1)
        raise RuntimeError(f"private PostgreSQL did not become ready:\n{self.log.read_text(errors='replace')[-2000:]}")

    def url(self, database: str) -> str:
        return f"postgresql+pg8000://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        engine = sa.create_engine(self.url("postgres"), isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        engine.dispose()
        return self.url(name)

    def destroy(self) -> None:
        if self.data.exists():
            self.thaw()
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)
