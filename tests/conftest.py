"""Session-wide fixtures: one throwaway PostgreSQL database, migrated, shared by every test.

Tests never rely on each other's data: each creates the rows it asserts on (unique names,
identifiers and ids) and never counts rows it did not create.
"""

from __future__ import annotations

import os
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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
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


@pytest.fixture(scope="module")
def jobs_client(database_url: str):  # noqa: ANN201
    """The jobs function (CloudEvents) through functions-framework's test client."""
    from functions_framework import create_app  # noqa: PLC0415

    app = create_app(target="jobs", source=str(ROOT / "functions" / "jobs" / "main.py"), signature_type="cloudevent")
    return app.test_client()


@pytest.fixture()
def client(api_app):  # noqa: ANN001, ANN201
    return api_app.test_client()


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
