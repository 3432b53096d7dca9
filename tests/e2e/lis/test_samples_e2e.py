"""Every real HL7 sample through the real function over HTTP, as a Pub/Sub push body and as an
Eventarc CloudEvent, with its expected outcome (tests/support/lis_samples.py).

Each run tags the sample's control id, identifiers and order numbers (tests/support/hl7_tag.py)
so runs do not see each other's patients in the shared database; every other byte is the file's.
"""

import uuid

import pytest
import requests

from tests.support import lis_db
from tests.support.hl7_tag import tag
from tests.support.lis_delivery import FORMS, new_id
from tests.support.lis_samples import SAMPLES, Sample, check

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("form", sorted(FORMS))
@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: s.file)
def test_sample_outcome(lis_process, sample: Sample, form: str) -> None:
    run = uuid.uuid4().hex[:8]
    message_id = new_id()
    headers, body = FORMS[form](tag(sample.raw, run), message_id)
    response = requests.post(lis_process.url + "/", data=body, headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    check(sample, lis_db.messages(pubsub_message_id=message_id), run)
    # The same delivery again is acknowledged and changes nothing.
    again = requests.post(lis_process.url + "/", data=body, headers=headers, timeout=30)
    assert again.status_code == 200
    rows = lis_db.messages(pubsub_message_id=message_id)
    assert [r.delivery_count for r in rows] == [2] * len(rows)
    check(sample, rows, run)


PHI = ["EVERYWOMAN", "KLEINSAMPLE", "NEWLASTNAME", "RUFUSS", "MELLODIAL", "PIPPO", "fakey", "TESTPATIENT",
       "1010110909194822", "PATID1234", "A0995614951", "555-44-4444", "0d70c6c8", "19560927", "FERNWOOD",
       "Potassium", "GLUCOSE", "eGFR calculation"]


def test_the_function_logs_no_patient_data(lis_process):
    for sample in SAMPLES:
        for form in FORMS.values():
            message_id = new_id()
            headers, body = form(tag(sample.raw, uuid.uuid4().hex[:8]), message_id)
            assert requests.post(lis_process.url + "/", data=body, headers=headers, timeout=30).status_code == 200
    logs = lis_process.logs()
    assert '"status": "processed"' in logs and '"status": "quarantined"' in logs  # it did log each message
    assert not [word for word in PHI if word in logs]
