"""Fixtures of the fault suite: a private PostgreSQL that may be restarted, real function processes
whose logs are collected, and the distinctive PHI values that must never reach those logs."""

from __future__ import annotations

import fcntl
import os
import pickle
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from tests.fault.private_pg import PrivatePostgres
from tests.support.processes import FunctionProcess, start_function


class FaultRun:
    """The processes one fault test started, the PHI it used, and the checks over their logs."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.procs: list[FunctionProcess] = []
        self.phi: set[str] = set()

    def start(self, target: str, env: dict[str, str], **kwargs) -> FunctionProcess:
        full_env = {"API_KEY_CACHE_SECONDS": "5", "LOG_LEVEL": "INFO", **env}
        proc = start_function(target, full_env, self.tmp, **kwargs)
        self.procs.append(proc)
        return proc

    def remember_phi(self, *values: str) -> None:
        self.phi.update(v for v in values if v)

    def logs(self) -> str:
        return "\n".join(p.logs() for p in self.procs)

    def assert_clean_logs(self) -> None:
        # Case-insensitive: a value upper-cased on its way (HL7 codes are) is still the patient's data.
        text = "\n".join(path.read_text(errors="replace") for path in sorted(self.tmp.glob("*.log"))).casefold()
        leaked = sorted(v for v in self.phi if v.casefold() in text)
        assert not leaked, f"{len(leaked)} PHI value(s) reached the logs, e.g. {leaked[0][:3]}…"
        assert "Traceback" not in text, "a stack trace reached the logs"

    def stop_all(self) -> None:
        for proc in self.procs:
            proc.stop()


@pytest.fixture()
def fault_run(tmp_path: Path) -> Iterator[FaultRun]:
    run = FaultRun(tmp_path)
    try:
        yield run
    finally:
        run.stop_all()
    run.assert_clean_logs()


@pytest.fixture()
def private_pg() -> Iterator[PrivatePostgres]:
    pg = PrivatePostgres().init()
    pg.start()
    try:
        yield pg
    finally:
        pg.destroy()


def migrated_database(pg: PrivatePostgres, name: str | None = None) -> str:
    """A new database on the private cluster, migrated to every head."""
    from shared.migrate import migrate  # noqa: PLC0415

    url = pg.create_database(name or f"fault_{uuid.uuid4().hex[:8]}")
    engine = sa.create_engine(url)
    migrate(engine)
    engine.dispose()
    return url


def api_token(url: str, *scopes: str) -> str:
    """An API key in the database at ``url`` (not the session database)."""
    from shared.auth import create_api_key  # noqa: PLC0415
    from shared.db import UnitOfWork  # noqa: PLC0415

    engine = sa.create_engine(url)
    with Session(engine) as session:
        _key, token = create_api_key(UnitOfWork(session), f"fault-{uuid.uuid4().hex[:8]}", list(scopes))
        session.commit()
    engine.dispose()
    return token


@pytest.fixture()
def fresh_database() -> Iterator[str]:
    """A new migrated database on the shared server, for one test (dropped afterwards)."""
    from shared.migrate import migrate  # noqa: PLC0415
    from tests.support.database import admin_url, create_database, drop_database  # noqa: PLC0415

    admin = admin_url()
    url = create_database(admin, prefix="pmfault")
    engine = sa.create_engine(url)
    migrate(engine)
    engine.dispose()
    try:
        yield url
    finally:
        drop_database(admin, url)


LIS_NAMESPACE = "FLTQZ"
LIS_FEED_SIZE = 200


@pytest.fixture(scope="session")
def lis_reference(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The feed delivered once, in order, one at a time, to a clean database through a real
    lis_consumer: the state every faulty delivery of the same feed must end in.

    Built once per run: under pytest-xdist the first worker that needs it builds it while holding a
    lock in the run's shared temporary directory, the others read what it stored (the feed is seeded,
    so every worker would build the same state)."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return _lis_reference(tmp_path_factory)
    shared = tmp_path_factory.getbasetemp().parent  # one directory per run, common to its workers
    stored = shared / "lis-reference.pickle"
    with (shared / "lis-reference.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stored.exists():
            return pickle.loads(stored.read_bytes())  # noqa: S301  (written by this run's own worker)
        state = _lis_reference(tmp_path_factory)
        stored.write_bytes(pickle.dumps(state))
        return state


def _lis_reference(tmp_path_factory: pytest.TempPathFactory) -> dict:
    from shared.migrate import migrate  # noqa: PLC0415
    from tests.fault.lis_support import Pusher, feed, phi_values, snapshot  # noqa: PLC0415
    from tests.support.database import admin_url, create_database, drop_database  # noqa: PLC0415

    admin = admin_url()
    url = create_database(admin, prefix="pmfaultref")
    engine = sa.create_engine(url)
    migrate(engine)
    engine.dispose()
    messages = feed(LIS_FEED_SIZE, LIS_NAMESPACE)
    proc = start_function("lis_consumer", {"DATABASE_URL": url, "THREADS": "4", "DB_POOL_SIZE": "4"},
                          tmp_path_factory.mktemp("lis-reference"))
    try:
        pusher = Pusher(url=lambda: proc.url, concurrency=1)
        assert pusher.deliver(messages) == []
        assert all(a.status == 200 for a in pusher.attempts), pusher.statuses()
        state = snapshot(url, LIS_NAMESPACE)
    finally:
        proc.stop()
        drop_database(admin, url)
    logs = proc.logs().casefold()
    leaked = sorted(v for v in phi_values(messages) if v.casefold() in logs)
    assert not leaked, f"PHI reached the lis_consumer log, e.g. {leaked[0][:3]}…"
    assert len(state["patients"]) >= 10 and len(state["orders"]) >= 20 and len(state["results"]) >= 50, \
        {k: len(v) for k, v in state.items()}
    return state
