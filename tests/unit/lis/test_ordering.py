"""Order-of-arrival rules: the state a set of messages produces does not depend on arrival order."""

from datetime import datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.lis.ordering import (
    as_stamp,
    available_status,
    control_sort_key,
    current_version,
    higher_order_status,
    make_stamp,
    merge_fields,
    order_status,
    order_status_from_code,
    result_class,
    stamp_time,
)

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def test_stamps_order_by_time_then_control_id_numerically():
    a = make_stamp(T0, "9", "LAB")
    b = make_stamp(T0, "10", "LAB")
    c = make_stamp(T0 + timedelta(seconds=1), "1", "LAB")
    assert a < b < c
    assert make_stamp(T0, "ABC", "LAB") > make_stamp(T0, "999", "LAB")  # text ids sort after numbers
    assert control_sort_key("007") < control_sort_key("10")


def test_stamps_are_utc_and_survive_jsonb():
    local = datetime(2026, 1, 1, 7, 0, tzinfo=timezone(timedelta(hours=7)))
    assert make_stamp(local, "1", "F")[0] == "2026-01-01T00:00:00.000000Z"
    assert make_stamp(datetime(5, 1, 1, tzinfo=timezone.utc), "1", "F")[0].startswith("0005-")
    stamp = make_stamp(T0, "1", "F")
    assert as_stamp(list(stamp)) == stamp
    assert as_stamp(None) is None and as_stamp(["a", 1, "b"]) is None
    assert stamp_time(stamp) == T0


def test_merge_fields_writes_only_newer_non_empty_values():
    old, new = make_stamp(T0, "1", "F"), make_stamp(T0 + timedelta(hours=1), "2", "F")
    current = {"phone": "+14155550100", "email": None}
    stamps = {"phone": list(new)}
    changes, new_stamps = merge_fields(current, stamps, {"phone": "+14155550199", "email": "a@b.org", "sex": None}, old)
    assert changes == {"email": "a@b.org"}  # phone is newer already; None means "not sent"
    assert new_stamps == {"email": list(old)}
    changes, new_stamps = merge_fields(current, {}, {"phone": "+14155550100"}, new)
    assert changes == {} and new_stamps == {"phone": list(new)}  # same value: no change, stamp moves


messages = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=50),  # minutes after T0
        st.dictionaries(st.sampled_from(["phone", "email", "name"]), st.one_of(st.none(), st.sampled_from("abc")), max_size=3),
    ),
    min_size=1, max_size=8,
)


@settings(max_examples=200, deadline=None)
@given(messages, st.randoms(use_true_random=False))
def test_fields_converge_whatever_the_arrival_order(batch, rnd):
    def apply(order):
        state, stamps = {}, {}
        for i in order:
            minutes, fields = batch[i]
            changes, new_stamps = merge_fields(state, stamps, fields, make_stamp(T0 + timedelta(minutes=minutes), str(i), "F"))
            state.update(changes)
            stamps.update(new_stamps)
        return state

    in_order = apply(range(len(batch)))
    shuffled = list(range(len(batch)))
    rnd.shuffle(shuffled)
    assert apply(shuffled) == in_order


def test_order_status_never_moves_down():
    assert higher_order_status("final", "preliminary") == "final"
    assert higher_order_status("final", "cancelled") == "final"
    assert higher_order_status("preliminary", "cancelled") == "cancelled"
    assert higher_order_status("final", "corrected") == "corrected"
    assert higher_order_status("requested", None) == "requested"
    assert higher_order_status(None, "scheduled") == "scheduled"
    assert higher_order_status("requested", "bogus") == "requested"


def test_order_status_from_a_message():
    assert order_status("NW", None, []) == "requested"
    assert order_status("CA", "IP", []) == "cancelled"
    assert order_status("RE", "CM", []) == "final"
    assert order_status(None, None, ["P", "F"]) == "preliminary"
    assert order_status(None, None, ["F", "F"]) == "final"
    assert order_status(None, None, ["F", "C"]) == "corrected"
    assert order_status("XO", None, []) is None
    assert order_status_from_code(" sc ") == "scheduled" and order_status_from_code("ZZ") is None


def version(status, minutes, value):
    return {"status": status, "stamp": list(make_stamp(T0 + timedelta(minutes=minutes), str(minutes), "F")), "value": value}


def test_a_final_result_never_returns_to_preliminary():
    final, late_prelim = version("F", 10, "5.0"), version("P", 20, "4.0")
    current, others = current_version([final, late_prelim])
    assert current is final and others == [late_prelim]


def test_a_correction_replaces_the_final_and_keeps_it():
    final, corrected = version("F", 10, "5.0"), version("C", 20, "5.5")
    current, others = current_version([corrected, final])
    assert current is corrected and others == [final]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("PFCXIRS"), st.integers(0, 100)), min_size=1, max_size=6, unique_by=lambda t: t[1]),
       st.randoms(use_true_random=False))
def test_result_versions_converge_whatever_the_arrival_order(specs, rnd):
    versions = [version(s, m, f"{s}{m}") for s, m in specs]
    shuffled = versions[:]
    rnd.shuffle(shuffled)
    a, a_rest = current_version(versions)
    b, b_rest = current_version(shuffled)
    assert a == b and a_rest == b_rest
    assert result_class(a["status"]) == max(result_class(s) for s, _ in specs)


def test_what_a_newly_current_result_announces():
    assert available_status("F") == "final" and available_status("X") == "final"
    assert available_status("C") == "corrected"
    assert available_status("P") is None and available_status(None) is None


def test_an_api_edit_wins_over_messages_written_before_it_and_up_to_its_instant():
    from shared.services.provenance import API_MARK, is_api_stamp, stamp_text  # noqa: PLC0415

    edit = [stamp_text(T0), API_MARK, ""]
    assert is_api_stamp(edit) and not is_api_stamp(list(make_stamp(T0, "1", "LAB")))
    current = {"name": {"family": "Edited"}}
    for when, control in ((T0 - timedelta(days=1), "1"), (T0, "99999999"), (T0, "ZZZ-TEXT-ID")):
        changes, stamps = merge_fields(current, {"name": edit}, {"name": {"family": "Lis"}}, make_stamp(when, control, "LAB"))
        assert (changes, stamps) == ({}, {})
    later = make_stamp(T0 + timedelta(microseconds=1), "1", "LAB")
    changes, stamps = merge_fields(current, {"name": edit}, {"name": {"family": "Lis"}}, later)
    assert changes == {"name": {"family": "Lis"}} and stamps == {"name": list(later)}
