"""Fixtures for the image checks: a fresh database on the machine's PostgreSQL (127.0.0.1:5432, which a
container on the host's network reaches), moto for notify's AWS calls, a sink standing in for the
broker, and the cluster-provided pieces of each pod (ConfigMap, Secret, K_SINK).

The images must exist (`make images`; `make image-test` builds them first)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import containers
from tests.support.database import _local_server_answers, create_database, drop_database
from tests.support.notify import AWS_ENV, Moto
from tests.support.sink import Sink, http_sink
from tools.images import artifacts, ensure_tools, image_exists

LOOPBACK_ADMIN = "postgresql+pg8000://postgres@127.0.0.1:5432/postgres"


@pytest.fixture(scope="session")
def built_images() -> None:
    ensure_tools()
    missing = [a.image for a in artifacts() if not image_exists(a.image)]
    assert not missing, f"not built: {', '.join(missing)}; run `make images` (or `make image-test`, which builds them)"


@pytest.fixture(scope="session")
def fresh_database() -> Iterator[str]:
    """A new, empty (not migrated) database; the migration Job's container migrates it."""
    admin = os.environ.get("TEST_ADMIN_DATABASE_URL", LOOPBACK_ADMIN)
    assert "@127.0.0.1:" in admin and _local_server_answers(), \
        "the image checks need PostgreSQL on 127.0.0.1:5432 (the containers reach it over the host's loopback)"
    url = create_database(admin, prefix="pmimage")
    os.environ["DATABASE_URL"] = url  # this process reads and seeds the same database
    from shared.db import dispose_engine  # noqa: PLC0415
    from shared.settings import reset_settings  # noqa: PLC0415

    reset_settings()
    dispose_engine()
    yield url
    dispose_engine()
    drop_database(admin, url)


@pytest.fixture(scope="session")
def moto() -> Iterator[Moto]:
    server = Moto()
    server.start()
    server.reset()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def broker() -> Iterator[Sink]:
    """Where K_SINK points: records every event a function publishes, answers 202 as the broker does."""
    with http_sink() as sink:
        yield sink


@pytest.fixture(scope="session")
def pod_context(fresh_database: str, broker: Sink, moto: Moto, tmp_path_factory: pytest.TempPathFactory) -> containers.PodContext:
    return containers.PodContext(
        configmaps=containers.configmaps(),
        secrets={"patient-mgt-db": {"url": fresh_database}},
        k_sink=broker.url,
        scratch=Path(tmp_path_factory.mktemp("pod-volumes")),
        # notify's AWS identity: in the cluster a projected token and ~/.aws/config from the prod
        # overlay; here moto's endpoint and test credentials.
        extra_env={"notify": {**AWS_ENV, "AWS_ENDPOINT_URL": moto.url}},
    )
