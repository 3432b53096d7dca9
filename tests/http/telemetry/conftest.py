import threading
import uuid
from pathlib import Path

import pytest
from functions_framework import create_app
from werkzeug.serving import make_server

from tests.support.telemetry import capture

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture()
def cap(database_url):
    """In-memory metrics and spans, plus the Prometheus reader and the queue gauges of the api."""
    yield from capture(prometheus=True, queue_gauges=True)


def patient_body(**extra):
    """A distinct person each time (the same name and birth date twice is a probable duplicate)."""
    return {"name": {"family": f"Tel-{uuid.uuid4().hex[:10]}", "given": ["Ada"]}, "birth_date": "1961-02-03", **extra}


class Recorder:
    """WSGI middleware keeping the headers of each delivery the notify function receives."""

    def __init__(self, app):
        self.app = app
        self.deliveries: list[dict[str, str]] = []

    def __call__(self, environ, start_response):
        headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
        self.deliveries.append(headers)
        return self.app(environ, start_response)


@pytest.fixture()
def notify_sink(database_url, tmp_path, monkeypatch):
    """The notify function over real HTTP on 127.0.0.1 (a thread of this process), as the api's K_SINK."""
    from shared.notify.runtime import reset_provider
    from shared.settings import reset_settings

    app = create_app(target="notify", source=str(ROOT / "functions" / "notify" / "main.py"), signature_type="cloudevent")
    recorder = Recorder(app.wsgi_app)
    server = make_server("127.0.0.1", 0, recorder, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("K_SINK", f"http://127.0.0.1:{server.server_port}/")
    monkeypatch.setenv("NOTIFY_PROVIDER", "console")
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    reset_settings()
    reset_provider()
    try:
        yield recorder
    finally:
        server.shutdown()
        thread.join(timeout=5)
        monkeypatch.undo()
        reset_settings()
        reset_provider()
