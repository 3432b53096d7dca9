"""Property: whatever bytes arrive — random escape sequences, mutated real and generated messages —
the function answers 2xx, never 5xx, and stores the message with a status (never ``failed``, which
would mean our code raised on it)."""

import random
import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import lis_db
from tests.support.hl7_gen import GenOrder, START, make_patient, oru_r01, results_for
from tests.support.lis_delivery import push
from tests.support.lis_samples import SAMPLES

OK = {"processed", "duplicate", "ignored", "quarantined"}
ESCAPES = [
    "\\F\\", "\\S\\", "\\T\\", "\\R\\", "\\E\\", "\\X41\\", "\\X0D0A\\", "\\Xzz\\", "\\X\\", "\\X4\\", "\\.br\\",
    "\\H\\", "\\N\\", "\\C2842\\", "\\M2442\\", "\\Zfoo\\", "\\", "\\\\", "\\.sp5\\", "\\.in+4\\", "\\.ti-3\\",
    "\\.ce\\", "\\.fi\\", "\\.nf\\", "\\X00\\", "\\XFFFE\\", "\\E", "\\F", "\\X" + "41" * 300 + "\\", "\\X1C\\",
]


def _base(seed: int) -> bytes:
    rng = random.Random(seed)
    patient = make_patient(rng, "PROP", rng.randrange(50))
    order = GenOrder(placer=f"PPROP{seed}", filler=f"FPROP{seed}", panel=rng.choice(["CBC", "BMP", "LIPID"]), ordered_at=START)
    order.values = results_for(rng, order)
    return oru_r01(patient, order, rng.choice("PFC"), "LAB-PROP", "X", START, rng)


def _unique(raw: bytes) -> bytes:
    """A new MSH-10 for every example, so none is skipped as a duplicate of an earlier one."""
    return raw.replace(b"|X|P|", b"|" + uuid.uuid4().hex.encode() + b"|P|", 1)


@st.composite
def escaped(draw) -> bytes:
    raw = _base(draw(st.integers(0, 10_000))).decode("utf-8")
    segments = raw.split("\r")
    for _ in range(draw(st.integers(1, 6))):
        i = draw(st.integers(1, len(segments) - 2))
        fields = segments[i].split("|")
        j = draw(st.integers(1, max(1, len(fields) - 1)))
        junk = "".join(draw(st.lists(st.sampled_from(ESCAPES), min_size=1, max_size=4)))
        if j < len(fields):
            pos = draw(st.integers(0, len(fields[j])))
            fields[j] = fields[j][:pos] + junk + fields[j][pos:]
        segments[i] = "|".join(fields)
    return _unique("\r".join(segments).encode("utf-8"))


MUTATIONS = ["delete", "insert", "replace", "drop_segment", "dup_segment", "swap_segments", "truncate",
             "line_endings", "wrap", "delimiters", "type"]


@st.composite
def mutated(draw) -> bytes:
    if draw(st.booleans()):
        raw = _unique(_base(draw(st.integers(0, 10_000))))
    else:
        raw = draw(st.sampled_from(SAMPLES)).raw
    data = bytearray(raw)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(MUTATIONS))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "delete" and data:
            del data[pos:pos + draw(st.integers(1, 8))]
        elif kind == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=12))
        elif kind == "replace" and data:
            data[pos] = draw(st.integers(0, 255))
        elif kind in ("drop_segment", "dup_segment", "swap_segments"):
            segs = bytes(data).split(b"\r")
            i, j = draw(st.integers(0, len(segs) - 1)), draw(st.integers(0, len(segs) - 1))
            if kind == "drop_segment":
                del segs[i]
            elif kind == "dup_segment":
                segs.insert(j, segs[i])
            else:
                segs[i], segs[j] = segs[j], segs[i]
            data = bytearray(b"\r".join(segs))
        elif kind == "truncate":
            del data[pos:]
        elif kind == "line_endings":
            data = bytearray(bytes(data).replace(b"\r", draw(st.sampled_from([b"\n", b"\r\n", b"\n\r", b""]))))
        elif kind == "wrap":
            data = bytearray(draw(st.sampled_from([b"\x0b", b"\xef\xbb\xbf", b"BHS|^~\\&\r", b"  \r\n"])) + bytes(data)
                             + draw(st.sampled_from([b"\x1c\r", b"BTS|1\r", b"", b"\x00"])))
        elif kind == "delimiters" and len(data) > 8 and data[:3] == b"MSH":
            data[3:8] = draw(st.binary(min_size=5, max_size=5))
        elif kind == "type":
            data = bytearray(bytes(data).replace(b"ORU^R01", draw(st.sampled_from(
                [b"ADT^A40", b"ORM^O01", b"OML^O21", b"OUL^R22", b"ADT^A08", b"", b"^", b"ORU", b"ZZZ^Z99"])), 1))
    return bytes(data)


def _deliver(lis_app, raw: bytes) -> None:
    message_id = uuid.uuid4().hex
    headers, body = push(raw, message_id)
    response = lis_app.test_client().post("/", headers=headers, data=body)
    assert response.status_code == 200, response.status_code
    rows = lis_db.messages(pubsub_message_id=message_id)
    assert rows, "every message is stored"
    assert all(r.status in OK and r.processed_at is not None for r in rows), [(r.status, r.error_code) for r in rows]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(raw=escaped())
def test_random_escape_sequences(lis_app, raw):
    _deliver(lis_app, raw)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(raw=mutated())
def test_mutated_messages(lis_app, raw):
    _deliver(lis_app, raw)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=400))
def test_arbitrary_bytes(lis_app, raw):
    _deliver(lis_app, raw)


junk_text = st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=40)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(attributes=st.dictionaries(junk_text, junk_text, max_size=4), ordering_key=junk_text, publish_time=junk_text,
       subscription=junk_text, raw=st.one_of(escaped(), st.sampled_from([s.raw for s in SAMPLES])))
def test_junk_in_the_envelope(lis_app, attributes, ordering_key, publish_time, subscription, raw):
    import base64 as b64
    import json

    message_id = uuid.uuid4().hex
    body = {"message": {"data": b64.b64encode(raw).decode(), "messageId": message_id, "attributes": attributes,
                        "orderingKey": ordering_key, "publishTime": publish_time}, "subscription": subscription}
    response = lis_app.test_client().post("/", data=json.dumps(body), headers={"Content-Type": "application/json"})
    assert response.status_code == 200
    rows = lis_db.messages(pubsub_message_id=message_id)
    assert rows and all(r.status in OK for r in rows)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.recursive(st.none() | st.booleans() | st.integers() | junk_text,
                         lambda inner: st.lists(inner, max_size=3) | st.dictionaries(junk_text, inner, max_size=3),
                         max_leaves=12),
       event=st.sampled_from(["patient", "order", "result"]))
def test_junk_json_events(lis_app, data, event):
    import json

    from shared.lis.json_event import EXAMPLE

    doc = json.loads(json.dumps(EXAMPLE))
    doc.update(event=event, message_id=uuid.uuid4().hex)
    doc["patient"]["name"] = data if isinstance(data, dict) else {"family": str(data)}
    doc["orders"][0]["results"][0]["values"] = [data] if not isinstance(data, list) else data
    event_id = uuid.uuid4().hex
    headers = {"Content-Type": "application/json", "ce-specversion": "1.0", "ce-type": "org.example.lis.v1",
               "ce-source": "/lis/junk", "ce-id": event_id}
    response = lis_app.test_client().post("/", data=json.dumps(doc), headers=headers)
    assert response.status_code == 200
    rows = lis_db.messages(ce_source="/lis/junk", ce_id=event_id)
    assert rows and all(r.status in OK for r in rows), [(r.status, r.error_code) for r in rows]
