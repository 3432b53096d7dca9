import pytest

from shared.settings import Settings


def test_pool_defaults_to_one_connection_per_thread(monkeypatch):
    monkeypatch.setenv("THREADS", "6")
    monkeypatch.delenv("DB_POOL_SIZE", raising=False)
    assert Settings().pool_size() == 6
    monkeypatch.setenv("DB_POOL_SIZE", "3")
    assert Settings().pool_size() == 3


def test_invalid_values_are_refused(monkeypatch):
    monkeypatch.setenv("NOTIFY_PROVIDER", "carrier-pigeon")
    with pytest.raises(ValueError):
        Settings()
