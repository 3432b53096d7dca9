"""Fixtures for the event backbone's integration tests: choosing the sink, the Pub/Sub emulator."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest

from tests.support.pubsub import running_emulator


@pytest.fixture()
def use_sink(monkeypatch: pytest.MonkeyPatch, database_url: str) -> Iterator[Callable[..., None]]:
    """Point this process's publisher at a sink: ``use_sink(k_sink=url)`` / ``use_sink(event_sink=...)`` / ``use_sink()`` (none)."""
    from shared.settings import reset_settings  # noqa: PLC0415

    def use(*, k_sink: str | None = None, event_sink: str | None = None, **settings: str) -> None:
        for name, value in {"K_SINK": k_sink, "EVENT_SINK": event_sink}.items():
            if value is None:
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, value)
        for name, value in settings.items():
            monkeypatch.setenv(name.upper(), value)
        reset_settings()

    use()
    yield use
    monkeypatch.undo()
    reset_settings()


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    """The real Pub/Sub emulator for this module; PUBSUB_EMULATOR_HOST points the client library at it."""
    import os  # noqa: PLC0415

    from shared.events.publishing import pubsub_sink  # noqa: PLC0415

    with running_emulator(tmp_path_factory.mktemp("pubsub"), project=f"pm-test-{uuid.uuid4().hex[:8]}") as emu:
        previous = os.environ.get("PUBSUB_EMULATOR_HOST")
        os.environ["PUBSUB_EMULATOR_HOST"] = emu.host
        pubsub_sink._client = None  # a client bound to an earlier emulator must not be reused
        try:
            yield emu
        finally:
            pubsub_sink._client = None
            if previous is None:
                os.environ.pop("PUBSUB_EMULATOR_HOST", None)
            else:
                os.environ["PUBSUB_EMULATOR_HOST"] = previous
