"""Order of arrival is not order of events: older data never overwrites newer data."""

import datetime as dt

from tests.support import lis_db
from tests.support.lis_ingest import Feed, hl7, one


def _patient(feed: Feed, mrn: str):
    pid = lis_db.patient_id_by_identifier(feed.facility, feed.id(mrn))
    assert pid is not None
    return lis_db.patient(pid)


def test_an_older_demographic_update_does_not_overwrite_a_newer_one(database_url):
    f = Feed()
    newer = hl7(f.msh("ADT^A08", "20260102100000"),
                f.pid("MRN1", name="NEWNAME^ANA", born="19800401", sex="F") + "|||1 New St^^Town^^111^ES||^PRN^PH^^^^^^^^^+34611111111")
    older = hl7(f.msh("ADT^A08", "20260101100000"),
                f.pid("MRN1", name="OLDNAME^ANA", born="19790101", sex="M") + "|||9 Old St^^Ville^^999^FR||"
                "^PRN^PH^^^^^^^^^+33622222222~^NET^Internet^old@example.org")
    assert one(newer).status == "processed"
    assert one(older).status == "processed"
    p = _patient(f, "MRN1")
    assert (p["family"], p["birth_date"], p["sex"], p["phone"]) == ("NEWNAME", dt.date(1980, 4, 1), "female", "+34611111111")
    assert p["address"]["line"] == ["1 New St"]
    # What the newer message did not carry, the older one may still fill in.
    assert p["email"] == "old@example.org"
    assert p["lis_applied_at"] == dt.datetime(2026, 1, 2, 10, tzinfo=dt.timezone.utc)


def test_same_msh7_is_ordered_by_control_id(database_url):
    f = Feed()
    second = hl7(f.msh("ADT^A08", "20260101100000", control=f"{f.tag}-0002"), f.pid("MRN1", name="SECOND^X"))
    first = hl7(f.msh("ADT^A08", "20260101100000", control=f"{f.tag}-0001"), f.pid("MRN1", name="FIRST^X"))
    one(second)
    one(first)
    assert _patient(f, "MRN1")["family"] == "SECOND"


def _oru(f: Feed, when: str, status: str, value: str, mrn: str = "MRN1", order: str = "ORD1") -> bytes:
    return hl7(
        f.msh("ORU^R01", when), f.pid(mrn),
        f"ORC|RE|{f.id(order)}|{f.id('FIL-' + order)}",
        f"OBR|1|{f.id(order)}|{f.id('FIL-' + order)}|2823-3^Potassium^LN|||{when}||||||||||||||||||{status}",
        f"OBX|1|NM|2823-3^Potassium^LN||{value}|mmol/L|3.5-5.1|{'H' if float(value) > 5.1 else 'N'}|||{status}|||{when}",
    )


def _result(f: Feed, order: str = "ORD1"):
    o = lis_db.order_by_number(placer=f.id(order))
    [r] = lis_db.results(o["id"])
    return o, r


def test_a_final_result_never_goes_back_to_preliminary(database_url):
    f = Feed()
    assert one(_oru(f, "20260101110000", "F", "5.0")).status == "processed"
    assert one(_oru(f, "20260101100000", "P", "4.0")).status == "processed"  # the preliminary arrives late
    order, result = _result(f)
    assert (order["status"], result["status"], result["value"]) == ("final", "F", "5.0")
    assert [(v["status"], v["value"]) for v in result["previous_versions"]] == [("P", "4.0")]
    assert result["version"] == 2


def test_a_correction_replaces_the_value_and_keeps_the_previous(database_url):
    f = Feed()
    one(_oru(f, "20260101100000", "F", "5.0"))
    outcome = one(_oru(f, "20260101120000", "C", "5.6"))
    order, result = _result(f)
    assert (order["status"], result["status"], result["value"], result["abnormal_flags"]) == ("corrected", "C", "5.6", ["H"])
    assert [(v["status"], v["value"], v["abnormal_flags"]) for v in result["previous_versions"]] == [("F", "5.0", ["N"])]
    assert result["version"] == 2 and result["lis_message_id"] == outcome.message_id
    events = lis_db.outbox_types(outcome.patient_id)
    assert events.count("org.patientmgt.result.available.v1") == 2  # final, then corrected


def test_a_correction_that_arrives_before_its_final_still_wins(database_url):
    f = Feed()
    one(_oru(f, "20260101120000", "C", "5.6"))
    one(_oru(f, "20260101100000", "F", "5.0"))
    _order, result = _result(f)
    assert (result["status"], result["value"]) == ("C", "5.6")
    assert [(v["status"], v["value"]) for v in result["previous_versions"]] == [("F", "5.0")]


def test_a_late_new_order_or_cancel_does_not_reopen_a_final_order(database_url):
    f = Feed()
    one(_oru(f, "20260101110000", "F", "4.4"))
    nw = hl7(f.msh("ORM^O01", "20260101090000"), f.pid("MRN1"), f"ORC|NW|{f.id('ORD1')}|{f.id('FIL-ORD1')}||SC",
             f"OBR|1|{f.id('ORD1')}|{f.id('FIL-ORD1')}|2823-3^Potassium^LN|||20260101090000")
    ca = hl7(f.msh("ORM^O01", "20260101120000"), f.pid("MRN1"), f"ORC|CA|{f.id('ORD1')}|{f.id('FIL-ORD1')}")
    assert one(nw).status == "processed" and one(ca).status == "processed"
    order, result = _result(f)
    assert order["status"] == "final" and result["value"] == "4.4"
    assert len(lis_db.orders(order["patient_id"])) == 1


def test_results_for_an_unknown_order_create_it_and_the_order_message_joins_it(database_url):
    f = Feed()
    one(_oru(f, "20260101110000", "P", "4.1"))
    order, _ = _result(f)
    assert (order["status"], order["code"], order["source"]) == ("preliminary", "2823-3", "lis")
    nw = hl7(f.msh("ORM^O01", "20260101090000"), f.pid("MRN1"), f"ORC|NW|{f.id('ORD1')}||^^^^^S",
             f"OBR|1|{f.id('ORD1')}||2823-3^Potassium^LN|||20260101090000||||||||||||||||||||S")
    one(nw)
    again = lis_db.order_by_number(placer=f.id("ORD1"))
    assert again["id"] == order["id"] and again["status"] == "preliminary"
    assert again["filler_number"] == f.id("FIL-ORD1")  # kept from the result message


def test_a_cancel_for_an_order_we_never_saw_creates_it_cancelled(database_url):
    f = Feed()
    ca = hl7(f.msh("ORM^O01", "20260101120000"), f.pid("MRN1"), f"ORC|CA|{f.id('ORD9')}")
    one(ca)
    nw = hl7(f.msh("ORM^O01", "20260101090000"), f.pid("MRN1"), f"ORC|NW|{f.id('ORD9')}",
             f"OBR|1|{f.id('ORD9')}||GLU^Glucose^L")
    one(nw)
    order = lis_db.order_by_number(placer=f.id("ORD9"))
    assert order["status"] == "cancelled" and order["code"] == "GLU"  # the late NW filled the code only


def test_a_message_dated_in_the_future_cannot_lock_out_later_updates(database_url):
    f = Feed()
    bogus = one(hl7(f.msh("ADT^A08", "20990101000000"), f.pid("MRN1", name="FUTURE^X")))
    assert "future_timestamp:MSH-7" in lis_db.message(bogus.message_id).warnings
    one(hl7(f.msh("ADT^A08", dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d%H%M%S")), f.pid("MRN1", name="NOW^X")))
    assert _patient(f, "MRN1")["family"] == "NOW"


def test_unknown_sex_and_a_name_without_family_do_not_erase_what_is_known(database_url):
    f = Feed()
    one(hl7(f.msh("ADT^A04", "20260101100000"), f.pid("MRN1", name="KNOWN^ANA", sex="F")))
    vague = one(hl7(f.msh("ADT^A08", "20260102100000"), f.pid("MRN1", name="^ANNA", sex="U")))
    p = _patient(f, "MRN1")
    assert (p["family"], p["given"], p["sex"]) == ("KNOWN", ["ANA"], "female")
    assert "incomplete:PID-5" in lis_db.message(vague.message_id).warnings
