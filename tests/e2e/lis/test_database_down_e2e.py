"""With its database unreachable, the real function answers 503 (Pub/Sub/Knative redeliver) for
every form of delivery — never 2xx for a message it could not store."""

import pytest
import requests

from tests.support.lis_delivery import eventarc_binary, lis_event, push
from tests.support.lis_samples import by_file

pytestmark = pytest.mark.e2e
RAW = by_file()["pyhl7__ORU-R01__1.hl7"].raw


@pytest.mark.parametrize("form", [push, eventarc_binary, lis_event])
def test_a_database_outage_is_503_with_retry_after(start_fn, form, closed_port):
    dead = f"postgresql+pg8000://postgres@127.0.0.1:{closed_port}/nowhere"
    proc = start_fn("lis_consumer", env={"DATABASE_URL": dead})
    headers, body = form(RAW)
    response = requests.post(proc.url + "/", data=body, headers=headers, timeout=30)
    assert response.status_code == 503
    assert response.headers.get("Retry-After")
    assert "EVERYWOMAN" not in response.text and "EVERYWOMAN" not in proc.logs()
