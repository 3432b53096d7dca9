"""Fuzzing the LIS consumer over HTTP: realistic and real HL7 messages, mutated by hypothesis (segments
dropped, duplicated, swapped, truncated; fields replaced by arbitrary text or bytes; delimiters,
charsets, line endings and framing changed), pushed to a real lis_consumer process.

Every delivery is answered 2xx (a retry cannot fix content), nothing escapes as an unhandled
exception, and every message is stored with a final status (processed, duplicate, ignored or
quarantined with a reason) — none left ``failed``. The property test of the LIS feature exercises
the parser in-process; this one goes through the whole function.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import hl7_gen, lis_db
from tests.support.lis_delivery import lis_event, new_id, push

pytestmark = [pytest.mark.fault, pytest.mark.e2e]
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "hl7"
HANDLED = {"processed", "duplicate", "ignored", "quarantined"}
# Field content the fuzzer writes into messages. Message content can be patient data wherever it
# sits (a sender that shifts fields puts a name where a code belongs), so none of it may be logged.
MARKER = "Qzphimark"


def _seeds() -> list[bytes]:
    corpus = [path.read_bytes() for path in sorted(FIXTURES.glob("*.hl7"))]
    corpus += [g.raw for g in hl7_gen.stream(77, 40, "FUZZQ")]
    return corpus


SEEDS = _seeds()
FIELD_TEXT = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["\\X0D\\", "\\E\\", "\\F\\", "\\", "^^^^", "~~", "&", "\\.br\\", "\\Zxx\\", "99999999999999999",
                     "20261340", "-1", "1e309", "NaN", "ü", "\x00", "\u202e", "\ud7ff", "A" * 5000]),
)


def _fresh_control_id(segment: bytes) -> bytes:
    """A new MSH-10 for a copy of a message, so the consumer applies it instead of deduplicating it."""
    if not segment.startswith(b"MSH") or len(segment) < 4:
        return segment
    fields = segment.split(segment[3:4])
    if len(fields) > 9:
        fields[9] = f"FZ{uuid.uuid4().hex[:16]}".encode()
    return segment[3:4].join(fields)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    raw = draw(st.sampled_from(SEEDS))
    segments = raw.replace(b"\r\n", b"\r").replace(b"\n", b"\r").split(b"\r")
    segments = [_fresh_control_id(s) for s in segments]  # else every mutant of a seed is a mere duplicate
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["drop", "dup", "swap", "field", "marker", "bytes", "truncate", "msh2", "charset"]))
        i = draw(st.integers(0, max(0, len(segments) - 1)))
        if op == "drop" and len(segments) > 1:
            segments.pop(i)
        elif op == "dup":
            segments.insert(i, segments[i])
        elif op == "swap":
            j = draw(st.integers(0, len(segments) - 1))
            segments[i], segments[j] = segments[j], segments[i]
        elif op == "field":
            fields = segments[i].split(b"|")
            k = draw(st.integers(0, max(0, len(fields) - 1)))
            fields[k] = draw(FIELD_TEXT).encode("utf-8", "surrogatepass")
            segments[i] = b"|".join(fields)
        elif op == "marker":
            fields = segments[i].split(b"|")
            k = draw(st.integers(1, max(1, len(fields) - 1)))
            fields[k:k + 1] = [f"{MARKER}{draw(st.integers(0, 999))}^{MARKER}".encode()]
            segments[i] = b"|".join(fields)
        elif op == "bytes":
            blob = draw(st.binary(min_size=1, max_size=30))
            pos = draw(st.integers(0, len(segments[i])))
            segments[i] = segments[i][:pos] + blob + segments[i][pos:]
        elif op == "truncate":
            segments[i] = segments[i][: draw(st.integers(0, len(segments[i])))]
            segments = segments[: i + 1]
        elif op == "msh2" and segments[0].startswith(b"MSH"):
            segments[0] = b"MSH" + draw(st.sampled_from([b"|^~\\&", b"|^~\\", b"#^~\\&#", b"|||||", b""])) + segments[0][8:]
        elif op == "charset":
            fields = segments[0].split(b"|")
            if len(fields) > 17:
                fields[17] = draw(st.sampled_from([b"8859/1", b"UNICODE UTF-8", b"ASCII", b"GB 18030-2000", b"KLINGON", b""]))
                segments[0] = b"|".join(fields)
    ending = draw(st.sampled_from([b"\r", b"\n", b"\r\n"]))
    body = ending.join(segments)
    frame = draw(st.sampled_from(["none", "none", "mllp", "bom"]))
    if frame == "mllp":
        body = b"\x0b" + body + b"\x1c\r"
    elif frame == "bom":
        body = b"\xef\xbb\xbf" + body
    return body


@pytest.mark.timeout(240)
def test_mutated_hl7_is_always_acknowledged_and_stored_with_a_status(database_url, fault_run):
    lis = fault_run.start("lis_consumer", {"DATABASE_URL": database_url, "THREADS": "4", "DB_POOL_SIZE": "4"})
    fault_run.remember_phi(MARKER)
    session = requests.Session()
    seen: list[str] = []

    @settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                      HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(raw=mutated(), form=st.sampled_from(["push", "push", "cloudevent"]))
    def deliver(raw: bytes, form: str) -> None:
        message_id = new_id()
        headers, body = push(raw, message_id) if form == "push" else lis_event(raw, event_id=message_id)
        resp = session.post(lis.url + "/", data=body, headers=headers, timeout=30)
        assert 200 <= resp.status_code < 300, (resp.status_code, resp.text[:300])
        rows = (lis_db.messages(pubsub_message_id=message_id) if form == "push"
                else lis_db.messages(ce_source="/lis/test-lab", ce_id=message_id))
        assert rows, "the delivery was acknowledged but nothing was stored"
        for row in rows:
            assert row.status in HANDLED, (row.status, row.error_code)
            assert row.error_code != "incomplete"
            if row.status == "quarantined":
                assert row.error_code, "a quarantined message says why"
        seen.extend(row.status for row in rows)

    deliver()
    logs = lis.logs()
    assert '"lis message failed"' not in logs and '"event handler failed"' not in logs and "Traceback" not in logs
    # The fuzzer reached both ends: messages that were applied and messages that were refused.
    assert "processed" in seen and "quarantined" in seen, sorted(set(seen))


def _field_sweep(raw: bytes, sample: int) -> list[tuple[str, str, bytes]]:
    """The message once per field, that field replaced by a marked value: (tag, "SEG-n", message)."""
    segments = raw.split(b"\r")
    out = []
    for i, segment in enumerate(segments):
        fields = segment.split(b"|")
        seg_id = fields[0].decode()
        for k in range(1, len(fields)):
            if seg_id == "MSH" and k == 1:
                continue  # MSH-2, the encoding characters
            tag = f"{MARKER}{sample}{i:02d}{k:02d}x"
            changed = list(fields)
            changed[k] = f"{tag}^{tag}".encode()
            label = f"{seg_id}-{k + 1 if seg_id == 'MSH' else k}"
            copy = [*segments[:i], b"|".join(changed), *segments[i + 1:]]
            if (seg_id, k) != ("MSH", 9):
                copy[0] = _fresh_control_id(copy[0])
            out.append((tag, label, b"\r".join(copy)))
    return out


@pytest.mark.timeout(240)
def test_no_field_of_a_message_reaches_the_logs(database_url, fault_run):
    """Every field of a result and of a registration message, one at a time, holds a marked value:
    whatever the consumer makes of it, the marked text is never logged, in any case (a sender that
    shifts fields puts a patient's name where a code belongs)."""
    lis = fault_run.start("lis_consumer", {"DATABASE_URL": database_url, "THREADS": "4", "DB_POOL_SIZE": "4"})
    fault_run.remember_phi(MARKER)
    feed = hl7_gen.stream(78, 30, "FUZZS")
    samples = [next(g.raw for g in feed if g.kind.startswith("ORU")), next(g.raw for g in feed if g.kind.startswith("ADT"))]
    session = requests.Session()
    labels: dict[str, str] = {}
    for n, raw in enumerate(samples):
        for tag, label, message in _field_sweep(raw, n):
            labels[tag.casefold()] = label
            message_id = new_id()
            headers, body = push(message, message_id)
            resp = session.post(lis.url + "/", data=body, headers=headers, timeout=30)
            assert resp.status_code == 200, (label, resp.status_code)
            assert MARKER.casefold() not in resp.text.casefold(), f"{label} is echoed in the response"
            rows = lis_db.messages(pubsub_message_id=message_id)
            assert rows and all(r.status in HANDLED for r in rows), (label, [(r.status, r.error_code) for r in rows])
    logs = lis.logs().casefold()
    leaked = sorted({label for tag, label in labels.items() if tag in logs})
    assert not leaked, f"field content reached the logs from: {leaked}"
