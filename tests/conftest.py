"""Session-wide fixtures: one throwaway PostgreSQL database, migrated, shared by every test.

Tests never rely on each other's data: each creates the rows it asserts on (unique names,
identifiers and ids) and never counts rows it did not create.
"""

from __future__ import annotations

import functools
import json
import os
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

# Settings for the test process, before any project module reads them.
os.environ.setdefault("NO_GCE_CHECK", "true")
os.environ["API_KEY_CACHE_SECONDS"] = "0"
os.environ.setdefault("LOG_LEVEL", "INFO")

from tests.support.database import admin_url, create_database, drop_database  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--images", action="store_true",
                     help="run the tests marked images: the built function images, run with podman (`make image-test`)")


def _deselect_images(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``images`` need the images built (minutes): only ``--images`` selects them."""
    if config.getoption("--images"):
        return
    deselected = [item for item in items if item.get_closest_marker("images")]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if not item.get_closest_marker("images")]


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    admin = admin_url()
    url = create_database(admin)
    os.environ["DATABASE_URL"] = url
    from shared.db import dispose_engine, get_engine  # noqa: PLC0415
    from shared.migrate import migrate  # noqa: PLC0415
    from shared.settings import reset_settings  # noqa: PLC0415

    reset_settings()
    dispose_engine()
    migrate(get_engine())
    yield url
    dispose_engine()
    drop_database(admin, url)


@pytest.fixture()
def closed_port() -> Iterator[int]:
    """A loopback port that refuses connections for the whole test and that no other process (another
    xdist worker's) can bind meanwhile (tests.support.processes.closed_port)."""
    from tests.support.processes import closed_port as hold  # noqa: PLC0415

    with hold() as port:
        yield port


@pytest.fixture()
def database_down(database_url: str, closed_port: int) -> Iterator[None]:
    """The process's database becomes unreachable (a port nobody listens on), then comes back."""
    from shared import db  # noqa: PLC0415
    from shared.settings import reset_settings  # noqa: PLC0415

    os.environ["DATABASE_URL"] = f"postgresql+pg8000://postgres@127.0.0.1:{closed_port}/nowhere"
    reset_settings()
    db.dispose_engine()
    yield
    os.environ["DATABASE_URL"] = database_url
    reset_settings()
    db.dispose_engine()


@pytest.fixture()
def uow(database_url: str) -> Iterator["object"]:
    """A unit of work that the test commits by leaving the block (services never commit)."""
    from shared.db import unit_of_work  # noqa: PLC0415

    with unit_of_work() as u:
        yield u


@pytest.fixture()
def make_token(database_url: str) -> Callable[..., str]:
    """Create an API key with the given scopes and return its token."""
    from shared.auth import create_api_key  # noqa: PLC0415
    from shared.db import unit_of_work  # noqa: PLC0415

    def make(*scopes: str, name: str | None = None) -> str:
        with unit_of_work() as u:
            _key, token = create_api_key(u, name or f"test-{uuid.uuid4().hex[:10]}", list(scopes))
        return token

    return make


@pytest.fixture()
def admin_token(make_token: Callable[..., str]) -> str:
    return make_token("admin")


@pytest.fixture(scope="session")
def api_app(database_url: str):  # noqa: ANN201
    from functions_framework import create_app  # noqa: PLC0415

    return create_app(target="api", source=str(ROOT / "functions" / "api" / "main.py"), signature_type="http")


@pytest.fixture(scope="session")
def jobs_client(database_url: str):  # noqa: ANN201
    """The jobs function (CloudEvents) through functions-framework's test client (session-wide, like
    api_app: a module scope here would make every test module one scheduling unit, see
    _shares_module_fixtures)."""
    from functions_framework import create_app  # noqa: PLC0415

    app = create_app(target="jobs", source=str(ROOT / "functions" / "jobs" / "main.py"), signature_type="cloudevent")
    return app.test_client()


@pytest.fixture()
def client(api_app):  # noqa: ANN001, ANN201
    return api_app.test_client()


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --- running in parallel (pytest-xdist, `make test`) -----------------------------------------------
#
# `make test` runs `pytest -n N --dist loadscope`; the scheduler below decides what a unit of work is
# and the order units are handed out. (xdist's own `--dist loadgroup` marks do not take effect with
# pytest 9.2: pytest-dev/pytest-xdist#1386.)

SLOW_SUITES = ("e2e", "fault")
_SHARED_SCOPE = re.compile(r"""scope\s*=\s*["'](module|class|package)["']""")


@functools.cache
def _shares_module_fixtures(module: str) -> bool:
    """Whether a test module (path relative to the root) or a conftest.py above it declares a fixture
    wider than a test and narrower than the session: its tests then stay together on one worker, so
    that fixture (a process, a moto server, an emulator) starts once. Read from the source, because
    the controller that schedules never collects; a wrong guess costs time, never correctness."""
    path = ROOT / module
    sources = [path, *(d / "conftest.py" for d in path.parents if d != ROOT and ROOT in d.parents)]
    return any(_SHARED_SCOPE.search(p.read_text()) for p in sources if p.is_file())


def _unit(nodeid: str) -> str:
    module = nodeid.split("::", 1)[0]
    return module if _shares_module_fixtures(module) else nodeid


def _is_slow(nodeid: str) -> bool:
    parts = nodeid.split("/")
    return len(parts) > 2 and parts[1] in SLOW_SUITES


# Seconds each test took (setup + call + teardown) when this machine last ran it, else in the committed
# seed (tests/durations.json, for a fresh clone; refresh it with `cp .data/test-durations.json tests/durations.json`).
LOCAL_DURATIONS = ROOT / ".data" / "test-durations.json"
SEED_DURATIONS = ROOT / "tests" / "durations.json"
_UNKNOWN = {"slow": 5.0, "fast": 0.3}  # a test not timed yet


def _known_durations() -> dict[str, float]:
    known: dict[str, float] = {}
    for path in (SEED_DURATIONS, LOCAL_DURATIONS):  # this machine's timings override the seed's
        try:
            known.update({str(k): float(v) for k, v in json.loads(path.read_text()).items()})
        except (OSError, ValueError, AttributeError, TypeError):
            continue
    return known


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    from xdist.scheduler import LoadScopeScheduling  # noqa: PLC0415

    class Units(LoadScopeScheduling):
        """LoadScope with our units: a module whose tests share a fixture, else a single test."""

        def _split_scope(self, nodeid: str) -> str:
            return _unit(nodeid)

    return Units(config, log)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The order units are handed out (xdist takes them in collection order): longest first.

    A unit's weight is what its tests took last time (tests/durations.json until this machine has
    timed them). Handing out the longest first (LPT) puts the slow e2e/fault units on every worker at
    once instead of one after another, and the run ends on small units that even out the finish: no
    worker is left alone with a two-minute module at the end. The order is a pure function of the
    collection and that file, so every worker computes the same one (xdist requires identical
    collections); without xdist it is merely an order.
    """
    if config is not None:  # the scheduling unit tests call this hook without a config
        _deselect_images(config, items)
    known = _known_durations()
    units: dict[str, list[pytest.Item]] = {}
    for item in items:
        units.setdefault(_unit(item.nodeid), []).append(item)

    def weight(unit: list[pytest.Item]) -> float:
        return sum(known.get(i.nodeid, _UNKNOWN["slow" if _is_slow(i.nodeid) else "fast"]) for i in unit)

    ordered = sorted(units.values(), key=weight, reverse=True)  # stable: ties keep the collection order
    items[:] = [item for unit in ordered for item in unit]


_timings: dict[str, float] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    # Workers' reports reach the controller too; only the controller (or a run without xdist) writes them.
    _timings[report.nodeid] = _timings.get(report.nodeid, 0.0) + report.duration


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The controller keeps what each test took for the next run's order (a partial run updates its tests)."""
    if hasattr(session.config, "workerinput") or not _timings:
        return
    merged = {**_known_durations(), **{k: round(v, 3) for k, v in _timings.items()}}
    try:
        LOCAL_DURATIONS.parent.mkdir(parents=True, exist_ok=True)
        LOCAL_DURATIONS.write_text(json.dumps(dict(sorted(merged.items())), indent=0))
    except OSError:
        pass  # a read-only checkout: the next run orders by the seed
