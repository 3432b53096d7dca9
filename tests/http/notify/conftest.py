"""The notify function through functions-framework's test client, sending through moto's SES/SNS server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.notify import Moto, notify_env

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def moto() -> Iterator[Moto]:
    server = Moto()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def notify_app(database_url: str, moto: Moto):  # noqa: ANN201
    from functions_framework import create_app

    from shared.notify.runtime import reset_provider
    from shared.settings import reset_settings

    env = notify_env(moto.url)
    cleared = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_SESV2", "AWS_ENDPOINT_URL_SNS")
    saved = {name: os.environ.get(name) for name in (*env, *cleared)}
    for name in cleared:
        os.environ.pop(name, None)
    os.environ.update(env)
    reset_settings()
    reset_provider()
    try:
        yield create_app(target="notify", source=str(ROOT / "functions" / "notify" / "main.py"), signature_type="cloudevent")
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        reset_settings()
        reset_provider()


@pytest.fixture()
def notify_client(notify_app, moto: Moto):  # noqa: ANN001, ANN201
    if moto.server is None:  # a test left it down
        moto.start()
    moto.reset()
    return notify_app.test_client()
