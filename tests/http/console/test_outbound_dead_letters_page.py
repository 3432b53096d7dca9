"""An order message the LIS never accepted, stored by the MLLP adapter's drain, is where operators
look in the console: listed and inspectable, without the HL7 (patient data) on either page."""

import re
import uuid

import sqlalchemy as sa

from shared.db import unit_of_work
from shared.mllp.dead_letters import DeadLetterDrain
from shared.mllp.order_message import OutboundOrder, PatientIdentity, render_order
from shared.models import DeadLetter
from tests.support.pulled import PulledMessage


def test_a_drained_order_message_is_listed_and_inspected_without_its_content(console, make_token):
    family = f"Zed{uuid.uuid4().hex[:8]}"
    hl7 = render_order(OutboundOrder("new", uuid.uuid4().hex, "PM77", "patient-mgt",
                                     PatientIdentity((("MRN-77", "urn:test", "MR"),), family)))
    patient = str(uuid.uuid4())
    message = PulledMessage(hl7, patient)
    DeadLetterDrain("projects/p/subscriptions/lis-outbound-dead-letter-hold", "projects/p/topics/lis-outbound-dead-letter").handle(message)
    assert message.answer == "ack"
    with unit_of_work() as uow:
        row_id = str(uow.session.scalar(sa.select(DeadLetter.id).where(DeadLetter.event_id == message.message_id)))

    console.sign_in(make_token("admin", name=f"dl-out-{uuid.uuid4().hex[:8]}"))
    listing = console.get("/console/dead-letters", query_string={"type": "google.cloud.pubsub.topic.v1.messagePublished"})
    assert listing.status_code == 200
    assert row_id in re.findall(r'<tr data-id="([0-9a-f-]{36})">', listing.text) and family not in listing.text
    inspect = console.get(f"/console/dead-letters/{row_id}")
    assert inspect.status_code == 200 and "lis-outbound-dead-letter" in inspect.text
    assert family not in inspect.text and "MRN-77" not in inspect.text
