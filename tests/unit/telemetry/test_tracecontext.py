"""W3C trace context parsing and what an outbox row stores."""

import pytest

from shared.log import current_trace
from shared.telemetry import tracecontext as tc

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"


def test_a_valid_traceparent_is_the_parent():
    parent = tc.parse_traceparent(f"00-{TRACE}-{SPAN}-01", "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE")
    assert parent == tc.RemoteParent(TRACE, SPAN, True, "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE")
    assert tc.parse_traceparent(f" 00-{TRACE.upper()}-{SPAN}-00 ").sampled is False


@pytest.mark.parametrize("value", [
    f"ff-{TRACE}-{SPAN}-01",                     # version ff is invalid
    f"00-{'0' * 32}-{SPAN}-01",                  # all-zero trace id
    f"00-{TRACE}-{'0' * 16}-01",                 # all-zero parent id
    f"00-{TRACE}-{SPAN}-01-extra",               # version 00 has exactly four fields
    f"00-{TRACE[:-1]}-{SPAN}-01",                # short trace id
    "00-Smith-John-01", "", None,
])
def test_an_invalid_traceparent_is_ignored(value):
    assert tc.parse_traceparent(value) is None


def test_a_future_version_may_carry_more_fields():
    assert tc.parse_traceparent(f"01-{TRACE}-{SPAN}-01-abc").trace_id == TRACE


@pytest.mark.parametrize("value", [
    "Bad Key=1", "k=", "a=b,=c", "k=v=w", "k=" + "v" * 300, ",".join(f"k{i}=v" for i in range(33)),
    "k=" + "v" * 250 + "," + "j=" + "v" * 250 + ",l=" + "x" * 20,  # longer than the outbox column
])
def test_a_malformed_tracestate_is_dropped(value):
    assert tc.clean_tracestate(value) is None


def test_a_tracestate_keeps_its_members_in_order():
    assert tc.clean_tracestate(" vendor@tenant=a1 , rojo=x ") == "vendor@tenant=a1,rojo=x"


def test_cloud_trace_header_keeps_the_trace_and_converts_the_span():
    parent = tc.parse_cloud_trace(f"{TRACE}/1234;o=1")
    assert parent == tc.RemoteParent(TRACE, f"{1234:016x}", True)
    assert tc.parse_cloud_trace(f"{TRACE};o=0").sampled is False
    assert tc.parse_cloud_trace("not-a-trace") is None


def test_bound_ids_are_what_log_lines_and_outbox_rows_carry():
    tc.bind("req-1", TRACE, SPAN, sampled=False, tracestate="rojo=1")
    assert current_trace() == (TRACE, SPAN)
    assert tc.current_traceparent() == f"00-{TRACE}-{SPAN}-00"
    assert tc.current_tracestate() == "rojo=1"
    tc.bind("req-2", TRACE, SPAN)
    assert tc.current_traceparent().endswith("-01") and tc.current_tracestate() is None


def test_new_ids_have_the_w3c_widths():
    assert len(tc.new_trace_id()) == 32 and len(tc.new_span_id()) == 16
    assert tc.parse_traceparent(f"00-{tc.new_trace_id()}-{tc.new_span_id()}-01") is not None
