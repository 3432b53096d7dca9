import json
import uuid

import pytest

from tests.support.telemetry import capture


@pytest.fixture()
def cap(database_url):
    """In-memory metrics and spans, plus the Prometheus reader and the queue gauges of the api."""
    yield from capture(prometheus=True, queue_gauges=True)


def patient_body(**extra):
    """A distinct person each time (the same name and birth date twice is a probable duplicate)."""
    return {"name": {"family": f"Tel-{uuid.uuid4().hex[:10]}", "given": ["Ada"]}, "birth_date": "1961-02-03", **extra}


def as_json(value):
    return json.dumps(value)
