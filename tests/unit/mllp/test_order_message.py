"""ORM^O01 / OML^O21 rendering, read back by our parser and by python-hl7's (written by others)."""

from datetime import date, datetime, timezone

import hl7
import pytest

from shared.hl7 import parse_message
from shared.mllp.order_message import Endpoints, OutboundOrder, PatientIdentity, render_order

PATIENT = PatientIdentity(identifiers=(("LAB-1001", "EVTLAB", "MR"), ("MRN|7^x", "urn:patient-mgt:mrn", "MR")),
                          family="Mensah", given=("Ama",), birth_date=date(1990, 5, 17), sex="female")


def _order(action="new", **kw) -> OutboundOrder:
    base = dict(action=action, control_id="EV-1", placer_number="PM42", placer_namespace="PATIENT-MGT", patient=PATIENT,
                code="2345-7", code_display="Glucose", code_system="LN", priority="stat",
                ordered_at=datetime(2026, 3, 1, 11, 0, tzinfo=timezone.utc), notes="fasting | since 8pm")
    return OutboundOrder(**{**base, **kw})


@pytest.mark.parametrize(("message_type", "structure"), [("ORM^O01", "ORM_O01"), ("OML^O21", "OML_O21")])
def test_our_parser_reads_back_the_order_patient_and_header(message_type, structure):
    raw = render_order(_order(), message_type, Endpoints("PM", "HOSP", "LIS", "LAB"))
    message = parse_message(raw)
    assert (message.header.message_type, message.header.trigger_event, message.header.structure) == (*message_type.split("^"), structure)
    assert (message.header.control_id, message.header.version, message.header.sending_facility) == ("EV-1", "2.5.1", "HOSP")
    assert [(i.value, i.system, i.type) for i in message.patient.identifiers] == [
        ("LAB-1001", "EVTLAB", "MR"), ("MRN|7^x", "urn:patient-mgt:mrn", "MR")]  # delimiters in data escaped
    [order] = message.orders
    assert order.placer_number == "PM42" and order.code.code == "2345-7" and order.code.system == "LN"


@pytest.mark.parametrize(("action", "control"), [("new", "NW"), ("cancel", "CA"), ("change", "XO")])
def test_python_hl7_reads_orc_1_and_the_placer_number_in_orc_2_and_obr_2(action, control):
    message = hl7.parse(render_order(_order(action, filler_number="F-9", filler_namespace="LAB")).decode())
    assert str(message.segment("ORC")[1]) == control
    assert str(message.segment("ORC")[2][0][0]) == "PM42" and str(message.segment("OBR")[2][0][0]) == "PM42"
    assert str(message.segment("ORC")[3][0][0]) == "F-9"
    assert str(message.segment("PID")[5][0][0]) == "Mensah"
    assert str(message.segment("NTE")[3]) == r"fasting \F\ since 8pm"  # python-hl7 leaves escapes as sent


def test_no_filler_number_before_the_lab_gave_one_and_no_nte_without_notes():
    message = hl7.parse(render_order(_order(notes=None)).decode())
    assert str(message.segment("ORC")[3]) == ""
    with pytest.raises(KeyError):
        message.segment("NTE")
