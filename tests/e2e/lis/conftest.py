"""A real lis_consumer process (functions-framework on 127.0.0.1) shared by a test module."""

from collections.abc import Iterator

import pytest

from tests.support.processes import FunctionProcess, start_function


@pytest.fixture(scope="module")
def lis_process(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FunctionProcess]:
    env = {"DATABASE_URL": database_url, "THREADS": "4", "API_KEY_CACHE_SECONDS": "0"}
    proc = start_function("lis_consumer", env, tmp_path_factory.mktemp("lis"))
    yield proc
    proc.stop()
