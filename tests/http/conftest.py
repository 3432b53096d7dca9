"""Fixtures of the function-level HTTP tests."""

from __future__ import annotations

import pytest


@pytest.fixture()
def key_cache_on(monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    """The production key cache (API_KEY_CACHE_SECONDS well above the test's duration)."""
    from shared.auth import clear_key_cache  # noqa: PLC0415
    from shared.settings import reset_settings  # noqa: PLC0415

    monkeypatch.setenv("API_KEY_CACHE_SECONDS", "300")
    reset_settings()
    clear_key_cache()
    yield
    monkeypatch.undo()
    reset_settings()
    clear_key_cache()
