"""What makes a result critical, where the alert goes, what each channel says (shared/critical/rules.py)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from shared.critical.rules import critical_reason, render, route_for, target_for, ward_from_hl7
from shared.settings import AlertRoute, CriticalRange, Settings

RANGES = {"2823-3": CriticalRange(low=2.8, high=6.2), "2345-7": CriticalRange(low=40)}


@pytest.mark.parametrize("flags, value_type, value, code, expected", [
    (["HH"], "NM", "7.9", "2823-3", "flag:HH"),
    (["ll"], "NM", "1.0", "x", "flag:LL"),
    (["A", "AA"], "ST", "positive", "x", "flag:AA"),
    (["H"], "NM", "6.3", "2823-3", "range:high"),  # a plain H, but above the critical range
    ([], "NM", "2.7", "2823-3", "range:low"),
    ([], "NM", "39", "2345-7", "range:low"),
    ([], "NM", "500", "2345-7", None),  # no high limit configured
    (["H"], "NM", "6.1", "2823-3", None),
    ([], "ST", "2.0", "2823-3", None),  # not numeric: the range does not apply
    ([], "NM", "nan", "2823-3", None),
    ([], "NM", "2.0", "9999-9", None),
])
def test_critical_by_flag_or_configured_range(flags, value_type, value, code, expected) -> None:
    assert critical_reason(flags, value_type, value, code, RANGES) == expected


def test_the_most_specific_route_wins() -> None:
    routes = {k: AlertRoute(channel="sms", to="+14155550100") for k in ("LAB/ICU", "LAB", "*")}
    assert route_for(routes, "LAB", "ICU")[0] == "LAB/ICU"
    assert route_for(routes, "LAB", "ER")[0] == "LAB"
    assert route_for(routes, "OTHER", None)[0] == "*"
    assert route_for({}, "LAB", "ICU") == (None, None)
    only_ward = {"LAB/ICU": routes["LAB/ICU"]}
    assert route_for(only_ward, "LAB", None) == (None, None)
    assert target_for(routes["LAB"], "escalation") is None and target_for(routes["LAB"], "alert") is routes["LAB"]


def test_routes_and_ranges_are_read_from_json_and_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRITICAL_ALERT_ROUTES", '{"LAB": {"channel": "webhook", "to": "https://pager.example/hook",'
                       ' "escalate_to": {"channel": "sms", "to": "+14155550100"}}}')
    monkeypatch.setenv("CRITICAL_RANGES", '{"2823-3": {"low": 2.8, "high": 6.2}}')
    settings = Settings()
    assert settings.critical_alert_routes["LAB"].escalate_to.channel == "sms"
    assert settings.critical_ranges["2823-3"].high == 6.2
    for bad in ('{"LAB": {"channel": "sms", "to": "0412 345"}}', '{"LAB": {"channel": "pager", "to": "x@y.z"}}',
                '{"LAB": {"channel": "email", "to": "two@a.b, three@a.b"}}', '{"LAB": {"channel": "webhook", "to": "ftp://x"}}'):
        monkeypatch.setenv("CRITICAL_ALERT_ROUTES", bad)
        with pytest.raises(ValueError):
            Settings()


def test_the_ward_is_pv1_3_1_of_the_stored_message() -> None:
    raw = b"MSH|^~\\&|LIS|LAB|EHR|HOSP|20260301||ORU^R01|1|P|2.5.1\rPID|1||X^^^LAB^MR\rPV1|1|I|ICU^101^A\rOBX|1|NM|x||1"
    assert ward_from_hl7(raw) == "ICU"
    assert ward_from_hl7(raw.replace(b"PV1|1|I|ICU^101^A", b"PV1|1|I")) is None
    assert ward_from_hl7(b'{"json": true}') is None and ward_from_hl7(None) is None


def test_sms_says_where_and_links_never_the_test_or_value_and_no_channel_names_the_patient() -> None:
    args = {"alert_id": "a1", "where": "ICU (LAB)", "test": "Potassium (2823-3)", "result": "7.9 mmol/L [HH]",
            "observed": datetime(2026, 3, 1, 8, tzinfo=timezone.utc), "minutes": 15}
    sms = render("sms", "alert", link="https://ward.example/alerts/a1", **args)
    assert sms.text == "Critical lab result for a patient at ICU (LAB). Open and acknowledge: https://ward.example/alerts/a1"
    assert "Potassium" not in sms.text and "7.9" not in sms.text
    email = render("email", "escalation", link=None, **args)
    assert email.subject == "ESCALATED: Critical lab result at ICU (LAB)"
    assert "Potassium (2823-3)" in email.text and "7.9 mmol/L [HH]" in email.text and "Acknowledge alert a1." in email.text
    assert "2026-03-01T08:00:00+00:00" in email.text
