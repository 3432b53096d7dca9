from collections.abc import Callable, Iterator

import pytest

from tests.support.notify import moto  # noqa: F401 — the fixture, for the e2e suites
from tests.support.processes import FunctionProcess, start_function


@pytest.fixture()
def start_fn(database_url: str, tmp_path) -> Iterator[Callable[..., FunctionProcess]]:
    """Start real functions-framework processes on 127.0.0.1; all are stopped after the test."""
    started: list[FunctionProcess] = []

    def start(target: str, env: dict[str, str] | None = None, **kwargs) -> FunctionProcess:
        full_env = {"DATABASE_URL": database_url, "API_KEY_CACHE_SECONDS": "0", "THREADS": "4", **(env or {})}
        proc = start_function(target, full_env, tmp_path, **kwargs)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()
