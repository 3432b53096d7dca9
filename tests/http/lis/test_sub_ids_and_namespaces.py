"""OBX-4 and ORC-2.2/OBR-2.2 modelled: same-coded observations of one order are told apart by their
sub-id and shown grouped (isolate → susceptibility panel); an order number is keyed within its
namespace so two systems' numbers cannot collide. NIST LRI test messages NIST-LRI-GU-004.00
(preliminary culture, three isolates) and NIST-LRI-GU-RU-004.01 (final, with one susceptibility
panel per isolate linked by OBR-26/OBR-29). State is read through the API."""

import uuid

from tests.support.lis_fidelity import Api, send
from tests.support.lis_ingest import Feed, hl7, one

PRELIMINARY, FINAL = "nistlri__ORU-R01__GU-004.00.hl7", "nistlri__ORU-R01__GU-RU-004.01.hl7"
ISOLATES = {"1": "Enterohemorrhagic Escherichia coli, serotype O157:H7", "2": "Salmonella I, group O:4",
            "3": "Shigella flexneri"}


def _api(client, make_token) -> Api:
    return Api(client, make_token("lis:read", "patients:read"))


def _orders(api: Api, run: str) -> dict[str, dict]:
    patient = api.patient_by_identifier("2.16.840.1.113883.3.72.5.30.2", f"PATID1234-{run}")
    assert patient is not None
    return {o["filler_number"]: o for o in api.orders(patient["id"])}


def _check_culture(api: Api, run: str) -> None:
    orders = _orders(api, run)
    culture = orders[f"R-783274-4-{run}"]
    assert (culture["placer_number"], culture["placer_namespace"], culture["filler_namespace"]) == (
        f"ORD723222-4-{run}", "2.16.840.1.113883.3.72.5.24", "2.16.840.1.113883.3.72.5.25")
    isolates = sorted(culture["results"], key=lambda r: r["sub_id"])
    assert [(r["code"]["code"], r["sub_id"], r["value"], r["status"]) for r in isolates] == [
        ("625-4", n, ISOLATES[n], "F") for n in ("1", "2", "3")]
    assert culture["status"] == "final"
    panels = {o["parent"]["result_id"]: o for o in orders.values() if o["parent"]}
    assert len(panels) == 3
    for group in culture["result_groups"]:
        [isolate_id] = group["result_ids"]
        [child] = group["child_order_ids"]
        panel = panels[isolate_id]
        assert child == panel["id"] and panel["parent"]["order_id"] == culture["id"]
        assert sorted((r["code"]["code"], r["value"], r["abnormal_flags"]) for r in panel["results"]) == [
            ("185-9", "0.05", ["S"]), ("267-5", "0.05", ["S"]), ("28-1", "<0.06", ["S"])]
    assert [g["sub_id"] for g in culture["result_groups"]] == ["1", "2", "3"]
    read = api.get(f"/orders/{culture['id']}")
    assert read["result_groups"] == culture["result_groups"]


def test_three_isolates_stay_three_results_and_each_panel_hangs_under_its_isolate(client, make_token):
    api, run = _api(client, make_token), uuid.uuid4().hex[:8]
    first = send(PRELIMINARY, run)
    assert first.status == "processed"
    culture = _orders(api, run)[f"R-783274-4-{run}"]
    assert sorted((r["sub_id"], r["value"], r["status"]) for r in culture["results"]) == [
        (n, ISOLATES[n], "P") for n in ("1", "2", "3")]
    assert [(g["sub_id"], len(g["result_ids"]), g["child_order_ids"]) for g in culture["result_groups"]] == [
        ("1", 1, []), ("2", 1, []), ("3", 1, [])]
    final = send(FINAL, run)
    assert final.status == "processed"
    assert "parent_unknown:OBR-29" not in api.message(final.message_id)["warnings"]
    _check_culture(api, run)


def test_the_final_before_the_preliminary_ends_the_same(client, make_token):
    api, run = _api(client, make_token), uuid.uuid4().hex[:8]
    assert send(FINAL, run).status == "processed"
    assert send(PRELIMINARY, run).status == "processed"
    _check_culture(api, run)


def test_two_systems_with_the_same_order_number_make_two_orders(client, make_token):
    api, f = _api(client, make_token), Feed()
    number = f.id("12345")
    a = one(hl7(f.msh("ORU^R01", "20260101100000"), f.pid("A"), f"ORC|RE|{number}^CLINIC_A|{number}^LAB",
                f"OBR|1|{number}^CLINIC_A|{number}^LAB|GLU^Glucose^L", "OBX|1|NM|GLU^Glucose^L||5.1|mmol/L|||||F"))
    b = one(hl7(f.msh("ORU^R01", "20260101100100"), f.pid("B"), f"ORC|RE|{number}^CLINIC_B|{number}^LAB2",
                f"OBR|1|{number}^CLINIC_B|{number}^LAB2|GLU^Glucose^L", "OBX|1|NM|GLU^Glucose^L||9.9|mmol/L|||||F"))
    assert (a.status, b.status) == ("processed", "processed")  # was order_patient_mismatch
    for outcome, ns, value in ((a, "CLINIC_A", "5.1"), (b, "CLINIC_B", "9.9")):
        [order] = api.orders(outcome.patient_id)
        assert (order["placer_number"], order["placer_namespace"]) == (number, ns)
        assert [r["value"] for r in order["results"]] == [value]
        assert not [w for w in api.message(outcome.message_id)["warnings"] if w.startswith("order_number_shared")]
    # The same system again finds its order (and only its own).
    again = one(hl7(f.msh("ORU^R01", "20260101110000"), f.pid("A"), f"ORC|RE|{number}^CLINIC_A|{number}^LAB",
                    f"OBR|1|{number}^CLINIC_A|{number}^LAB|GLU^Glucose^L", "OBX|1|NM|GLU^Glucose^L||5.3|mmol/L|||||C"))
    assert again.status == "processed"
    [order] = api.orders(a.patient_id)
    assert [(r["value"], r["status"]) for r in order["results"]] == [("5.3", "C")]


def test_a_number_reused_without_a_namespace_is_told_apart_by_the_filler_number(client, make_token):
    api, run = _api(client, make_token), uuid.uuid4().hex[:8]
    outcome = send("aidbox__ORU-R01__multiple-obr.hl7", run)
    assert outcome.status == "processed"
    assert "order_number_shared:ORC-2" in api.message(outcome.message_id)["warnings"]
    patient = api.patient_by_identifier("HOSPITAL", f"TEST-0005-{run}")
    orders = {o["filler_number"]: o for o in api.orders(patient["id"])}
    assert orders[f"FIL003A-{run}"]["placer_number"] == f"ORD003-{run}"
    assert orders[f"FIL003B-{run}"]["placer_number"] is None  # the number is the first order's
    assert api.results(patient["id"]) == {
        f"FIL003A-{run}": [("52100", None, "8.5", "F"), ("52101", None, "4.8", "F")],
        f"FIL003B-{run}": [("51998", None, "4.0", "F"), ("52098", None, "140", "F")]}


def test_a_sub_id_sent_again_alone_corrects_its_own_result(client, make_token):
    # Isolate 2 corrected in a message of its own: it must not land on isolate 1 (positional keys did).
    api, run = _api(client, make_token), uuid.uuid4().hex[:8]
    send(PRELIMINARY, run)

    def only_isolate_2(data: bytes) -> bytes:
        lines = [line for line in data.split(b"\n") if not (line.startswith(b"OBX|1|") or line.startswith(b"OBX|3|"))]
        return b"\n".join(lines).replace(b"|NIST-LRI-GU-004.00-", b"|NIST-LRI-GU-004.09-").replace(b"|||A|||P|||", b"|||A|||C|||")

    assert send(PRELIMINARY, run, edit=only_isolate_2).status == "processed"
    culture = _orders(api, run)[f"R-783274-4-{run}"]
    assert sorted((r["sub_id"], r["status"]) for r in culture["results"]) == [("1", "P"), ("2", "C"), ("3", "P")]
