"""No LIS delivery can break the next one.

Every input of the LIS path that becomes a SQL parameter — HL7 fields, Pub/Sub envelope fields,
CloudEvent attributes, JSON LIS event fields, the URL path — gets extreme values (calendar edges
with ±14:00 offsets, NUL, lone surrogates, huge integers, very long strings, JSON nested past the
recursion limit, a body over the size limit), sent to a real lis_consumer with production-like
settings (8 threads) and a pool of 2, so that a connection the poison left out of step would be
handed to the very next requests. After each poison:

* its answer is not a 5xx (a retry cannot fix content: a 5xx would be a redelivery loop), and a
  message that was stored has a final status (never ``failed``), with the reason we expect where
  the value is out of range or unreadable;
* the same delivery again is answered the same way without a new row (a duplicate, not a fresh
  poisoning);
* the next 20 valid ORUs, 8 at a time, are each answered 200 ``processed`` with their result stored;
* nothing in the database is ``failed``.

Before the fixes of issue 23 the first poison (MSH-7 ``99991231235959-1400``) left a pooled
connection out of step and most valid ORUs after every timestamp poison failed with 500 or were
left ``failed``.
"""

from __future__ import annotations

import base64
import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest
import requests
import sqlalchemy as sa

from tests.support.lis_delivery import PUBSUB_TYPE, SUBSCRIPTION, TOPIC_SOURCE

pytestmark = [pytest.mark.fault, pytest.mark.e2e]
TAG = uuid.uuid4().hex[:8]
FACILITY = f"PZLAB{TAG}"
FAMILY = f"Poisonfam{TAG}"  # distinctive PHI: must never reach the logs
VALID_AFTER_EACH = 20
HANDLED = {"processed", "duplicate", "ignored", "quarantined"}

LATE = "99991231235959-1400"  # 10000-01-01T13:59:59Z: beyond Python's datetime in UTC
EARLY = "00010101000000+1400"  # 0000-12-31T10:00:00Z: before year 1 in UTC
EDGE_OK = "99991231235959+1400"  # 9999-12-31T09:59:59Z: the last representable day, storable
RFC_LATE = "9999-12-31T23:59:59-14:00"
RFC_EARLY = "0001-01-01T00:00:00+14:00"
NUL = "Nul\x00pat"
SURROGATE_BYTES = b"Sur\xed\xa0\x80gate"  # a lone surrogate as CESU-8 bytes (not valid UTF-8)
HUGE = "9" * 400
LONG = "L" * 70_000


def _hl7_template(n: str) -> list[list[str]]:
    """A valid ORU^R01 as segments of fields (SEG-n is fields[n], MSH-n is fields[n - 1])."""
    lines = [
        f"MSH|^~\\&|LIS|{FACILITY}|EHR|HOSP|20261125101500+0100||ORU^R01|PZ{n}|P|2.5.1",
        f"PID|1||PZM{n}^^^{FACILITY}^MR||{FAMILY}^Al||19800401|F|||1 Main St^^Town^^12345||+14155550123",
        f"ORC|RE|PZO{n}|PZF{n}||CM||||20261125093000+0100",
        f"OBR|1|PZO{n}|PZF{n}|2823-3^Potassium^LN|||20261125093000+0100",
        "OBX|1|NM|2823-3^Potassium^LN||4.2|mmol/L|3.5-5.1|N|||F|||20261125094000+0100",
        "NTE|1||a note",
    ]
    return [line.split("|") for line in lines]


def _render(segments: list[list[str]]) -> bytes:
    return ("\r".join("|".join(fields) for fields in segments) + "\r").encode("utf-8", "surrogatepass")


def hl7_with(label: str, value: str | bytes, n: str, *, clear: tuple[str, ...] = ()) -> bytes:
    """The template with ``label`` (e.g. "OBX-14") set to ``value``; ``clear`` fields emptied."""
    segments = _hl7_template(n)
    marker = f"@@{uuid.uuid4().hex}@@"
    for name, text in [(label, marker), *((c, "") for c in clear)]:
        seg_id, number = name.split("-")
        for fields in segments:
            if fields[0] == seg_id:
                index = int(number) - (1 if seg_id == "MSH" else 0)
                fields.extend([""] * (index + 1 - len(fields)))
                fields[index] = text
    raw = _render(segments)
    return raw.replace(marker.encode(), value if isinstance(value, bytes) else value.encode("utf-8", "surrogatepass"))


def json_event(n: str, **changes) -> dict:
    event = {
        "version": "1", "event": "result", "message_id": f"PZJ{n}", "sending_facility": FACILITY,
        "sent_at": "2026-11-25T10:15:00+01:00",
        "patient": {"identifiers": [{"value": f"PZJM{n}", "type": "MR"}], "name": {"family": FAMILY, "given": ["Al"]},
                    "birth_date": "1980-04-01", "sex": "female"},
        "orders": [{"placer_number": f"PZJO{n}", "code": {"code": "2823-3", "system": "LN"}, "status": "F",
                    "ordered_at": "2026-11-25T09:30:00+01:00",
                    "results": [{"code": {"code": "2823-3", "system": "LN"}, "value_type": "NM", "values": ["4.2"],
                                 "status": "F", "observed_at": "2026-11-25T09:40:00+01:00"}]}],
    }
    for path, value in changes.items():
        target = event
        keys = path.split("__")
        for key in keys[:-1]:
            target = target[int(key)] if key.isdigit() else target[key]
        target[keys[-1]] = value
    return event


def deep_json(depth: int = 5000) -> str:
    return '{"version": "1", "x": ' + "[" * depth + "]" * depth + "}"


# --- the deliveries --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Poison:
    label: str
    headers: dict[str, str]
    body: bytes
    path: str = "/"
    expect_reason: str | None = None  # the quarantine reason its stored row must carry
    expect_status: int | None = None  # an exact HTTP status (e.g. 413), when not 200
    expect_warning: str | None = None  # a warning its stored row must carry


def push_body(data: bytes | str | None, message: dict | None = None, **extra) -> bytes:
    msg: dict = {"messageId": uuid.uuid4().hex, "publishTime": "2026-11-25T10:00:00.123456789Z"}
    if data is not None:
        msg["data"] = base64.b64encode(data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data).decode()
    msg.update(message or {})
    return json.dumps({"message": msg, "subscription": SUBSCRIPTION, **extra}).encode()


JSON = {"Content-Type": "application/json"}


def ce_headers(ce_type: str, content_type: str, **attrs: str) -> dict[str, str]:
    headers = {"Content-Type": content_type, "ce-specversion": "1.0", "ce-type": ce_type,
               "ce-source": "/lis/poison-lab", "ce-id": uuid.uuid4().hex}
    headers.update({f"ce-{k}": v for k, v in attrs.items()})
    return headers


def structured(data: object, **attrs: object) -> bytes:
    event = {"specversion": "1.0", "type": PUBSUB_TYPE, "source": TOPIC_SOURCE, "id": uuid.uuid4().hex,
             "time": "2026-11-25T10:00:00.123Z", "datacontenttype": "application/json", "data": data, **attrs}
    return json.dumps(event).encode()


def poisons() -> list[Poison]:
    out: list[Poison] = []

    def n() -> str:
        return uuid.uuid4().hex[:12]

    # HL7 timestamps: out of range in UTC → quarantined with the field; the last storable day is applied.
    for label, clear in (("MSH-7", ()), ("OBR-7", ()), ("ORC-9", ("OBR-7",)), ("OBX-14", ())):
        for value in (LATE, EARLY):
            out.append(Poison(f"{label}={value}", JSON, push_body(hl7_with(label, value, n(), clear=clear)),
                              expect_reason=f"out_of_range:{label}"))
        out.append(Poison(f"{label}={EDGE_OK}", JSON, push_body(hl7_with(label, EDGE_OK, n(), clear=clear))))
    out.append(Poison(f"PID-7={EARLY}", JSON, push_body(hl7_with("PID-7", EARLY, n())), expect_warning="out_of_range:PID-7"))
    # HL7 text fields: NUL, a lone surrogate, huge numbers, very long text.
    for label in ("MSH-3", "MSH-4", "MSH-10", "PID-3", "PID-5", "PID-11", "PID-13", "ORC-2", "OBR-4", "OBX-3",
                  "OBX-5", "OBX-6", "OBX-11", "NTE-3"):
        out.append(Poison(f"{label}=NUL", JSON, push_body(hl7_with(label, NUL, n())),
                          expect_warning=f"nul_removed:{label}"))
    for label in ("MSH-4", "MSH-10", "PID-3", "PID-5", "ORC-2", "OBX-5"):
        out.append(Poison(f"{label}=surrogate", JSON, push_body(hl7_with(label, SURROGATE_BYTES, n()))))
    for label in ("MSH-10", "PID-3", "ORC-2", "OBX-5"):
        out.append(Poison(f"{label}=huge", JSON, push_body(hl7_with(label, HUGE, n()))))
        out.append(Poison(f"{label}=long", JSON, push_body(hl7_with(label, LONG, n()))))
    # The Pub/Sub envelope.
    for value in (RFC_LATE, RFC_EARLY, "9999-12-31T23:59:59.999999999Z"):
        out.append(Poison(f"publishTime={value}", JSON, push_body(hl7_with("MSH-7", "", n()), {"publishTime": value}),
                          expect_warning="out_of_range:publishTime" if value != "9999-12-31T23:59:59.999999999Z" else None))
    for key, extremes in (("messageId", ("NUL", "surrogate", "huge", "long")), ("orderingKey", ("NUL", "surrogate"))):
        for label in extremes:
            value = {"NUL": "id\x00x", "surrogate": "id\ud800x", "huge": 10**40, "long": "i" * 10_000}[label]
            out.append(Poison(f"{key}={label}", JSON, push_body(hl7_with("MSH-7", "20261125101500", n()), {key: value})))
    out.append(Poison("attributes=extreme", JSON, push_body(hl7_with("MSH-7", "20261125101500", n()), {"attributes": {
        "k\x00": "v\ud800", "big": 10**40, "nested": {"a": [1, None]}, "long": "a" * 50_000}})))
    out.append(Poison("subscription=NUL+surrogate", JSON, push_body(hl7_with("MSH-7", "20261125101500", n()),
                                                                   subscription="s\x00\ud800")))
    out.append(Poison("path=NUL", JSON, push_body(hl7_with("MSH-7", "20261125101500", n())),
                      path="/projects/p%00x/topics/t%ED%A0%80"))
    # CloudEvent attributes: binary Eventarc, a LIS's own events, structured.
    for value in (RFC_LATE, RFC_EARLY):
        body = push_body(hl7_with("MSH-7", "", n()), {"publishTime": None})
        out.append(Poison(f"eventarc ce-time={value}", ce_headers(PUBSUB_TYPE, "application/json", time=value), body,
                          expect_warning="out_of_range:ce-time"))
        out.append(Poison(f"lis hl7 ce-time={value}", ce_headers("org.example.lis.message.v1", "application/hl7-v2",
                                                                  time=value), hl7_with("MSH-7", "", n()),
                          expect_warning="out_of_range:ce-time"))
        out.append(Poison(f"structured time={value}", {"Content-Type": "application/cloudevents+json"},
                          structured(json.loads(push_body(hl7_with("MSH-7", "", n()), {"publishTime": None})), time=value),
                          expect_warning="out_of_range:ce-time"))
    out.append(Poison("lis hl7 ce-id=long", ce_headers("org.example.lis.message.v1", "application/hl7-v2", id="i" * 8000),
                      hl7_with("MSH-7", "20261125101500", n())))
    out.append(Poison("structured id=surrogate", {"Content-Type": "application/cloudevents+json"},
                      structured(json.loads(push_body(hl7_with("MSH-7", "20261125101500", n()))), id="x\ud800\x00")))
    # The JSON LIS event.
    for path in ("sent_at", "orders__0__ordered_at", "orders__0__results__0__observed_at"):
        for value in (RFC_LATE, RFC_EARLY):
            field_name = path.replace("__", ".")
            out.append(Poison(f"json {field_name}={value}", JSON, push_body(json.dumps(json_event(n(), **{path: value}))),
                              expect_reason=f"out_of_range:{field_name}"))
            if path == "sent_at":  # the same check as in Pub/Sub data: once as a LIS's own CloudEvent
                out.append(Poison(f"json ce {field_name}={value}", ce_headers("org.example.lis.event.v1", "application/json"),
                                  json.dumps(json_event(n(), **{path: value})).encode(),
                                  expect_reason=f"out_of_range:{field_name}"))
    for value in ("0001-01-01", "9999-12-31"):
        out.append(Poison(f"json birth_date={value}", JSON, push_body(json.dumps(json_event(n(), patient__birth_date=value))),
                          expect_warning="out_of_range:PID-7"))
    for label, value in (("NUL", "m\x00id"), ("surrogate", "m\ud800id"), ("huge", 10**40), ("long", "m" * 10_000)):
        out.append(Poison(f"json message_id={label}", JSON, push_body(json.dumps(json_event(n(), message_id=value)))))
    for label, value in (("NUL", "m\x00id"), ("surrogate", "m\ud800id")):
        out.append(Poison(f"json identifier={label}", JSON,
                          push_body(json.dumps(json_event(n(), patient__identifiers__0__value=value)))))
        out.append(Poison(f"json value={label}", JSON,
                          push_body(json.dumps(json_event(n(), orders__0__results__0__values=[value])))))
    # JSON nested past the recursion limit, in every content mode.
    deep = deep_json()
    out.append(Poison("deep json in push data", JSON, push_body(deep), expect_reason="invalid_json"))
    out.append(Poison("deep json binary lis event", ce_headers("org.example.lis.event.v1", "application/json"),
                      deep.encode(), expect_reason="invalid_json"))
    out.append(Poison("deep json binary eventarc", ce_headers(PUBSUB_TYPE, "application/json"), deep.encode(),
                      expect_reason="invalid_pubsub_envelope"))
    out.append(Poison("deep json structured", {"Content-Type": "application/cloudevents+json"},
                      b'{"specversion": "1.0", "type": "t", "source": "s", "id": "' + n().encode() + b'", "data": '
                      + deep.encode() + b"}", expect_status=400))
    out.append(Poison("deep json push body", JSON, b'{"message": ' + deep.encode() + b"}", expect_status=400))
    # Over the body limit (LIS_MAX_BODY_BYTES, 10 MiB by default): 413 so Pub/Sub dead-letters it.
    out.append(Poison("body over the limit", JSON, push_body(b"MSH|" + b"x" * (11 * 1024 * 1024)), expect_status=413))
    return out


# --- the checks ------------------------------------------------------------------------------------


@dataclass
class Run:
    url: str
    db: sa.Engine
    seen: set[str] = field(default_factory=set)
    session: requests.Session = field(default_factory=requests.Session)

    def post(self, poison: Poison) -> requests.Response:
        return self.session.post(self.url + poison.path, data=poison.body, headers=poison.headers, timeout=60)

    def new_rows(self) -> list[sa.Row]:
        with self.db.connect() as conn:
            rows = conn.execute(sa.text(
                "SELECT id::text, status, error_code, warnings, delivery_count FROM lis_messages "
                "WHERE NOT (control_id LIKE 'PZV%' AND control_id IS NOT NULL) ORDER BY received_at")).all()
        fresh = [r for r in rows if r.id not in self.seen]
        self.seen.update(r.id for r in fresh)
        return fresh

    def rows(self, ids: list[str]) -> list[sa.Row]:
        with self.db.connect() as conn:
            found = {r.id: r for r in conn.execute(sa.text(
                "SELECT id::text, status, delivery_count FROM lis_messages WHERE id::text = ANY(:ids)"), {"ids": ids})}
        return [found[i] for i in ids if i in found]

    def failed(self) -> list[sa.Row]:
        with self.db.connect() as conn:
            return conn.execute(sa.text("SELECT id, error_code FROM lis_messages WHERE status = 'failed'")).all()


def _valid(run: Run, count: int) -> list[str]:
    """Deliver `count` valid ORUs, 8 at a time; returns what went wrong (empty when all were applied)."""
    numbers = [f"{uuid.uuid4().hex[:12]}" for _ in range(count)]

    def send(number: str) -> str | None:
        raw = (f"MSH|^~\\&|LIS|{FACILITY}|EHR|HOSP|20261125101500+0100||ORU^R01|PZV{number}|P|2.5.1\r"
               f"PID|1||PZVM{number}^^^{FACILITY}^MR||{FAMILY}{number[:6]}^Val||19800401|F\r"
               f"ORC|RE|PZVO{number}\rOBR|1|PZVO{number}||2823-3^Potassium^LN\r"
               f"OBX|1|NM|2823-3^Potassium^LN||{int(number[:6], 16)}|mmol/L|||||F\r").encode()
        try:
            resp = requests.post(run.url + "/", data=push_body(raw), headers=JSON, timeout=60)
        except requests.RequestException as exc:
            return f"{number}: {type(exc).__name__}"
        if resp.status_code != 200:
            return f"{number}: HTTP {resp.status_code}"
        statuses = [m["status"] for m in resp.json().get("messages", [])]
        return None if statuses == ["processed"] else f"{number}: {statuses}"

    with ThreadPoolExecutor(8) as pool:
        problems = [p for p in pool.map(send, numbers) if p]
    with run.db.connect() as conn:
        stored = dict(conn.execute(sa.text(
            "SELECT o.placer_number, r.value FROM lab_orders o JOIN lab_results r ON r.order_id = o.id "
            "WHERE o.placer_number = ANY(:numbers)"), {"numbers": [f"PZVO{x}" for x in numbers]}).all())
    for number in numbers:
        if stored.get(f"PZVO{number}") != str(int(number[:6], 16)):
            problems.append(f"{number}: result not stored")
    return problems


# The poisons in PARTS interleaved slices, each against its own lis_consumer and database: together
# every poison once, as one test did, but units that `make test`'s workers run side by side.
PARTS = 3


def test_the_parts_together_send_every_poison_once():
    labels = [p.label for p in poisons()]
    assert len(labels) > 80 and len(set(labels)) == len(labels)
    assert sorted(label for part in range(PARTS) for label in labels[part::PARTS]) == sorted(labels)


@pytest.mark.timeout(600)
@pytest.mark.parametrize("part", range(PARTS))
def test_no_lis_delivery_breaks_the_next_ones(fresh_database, fault_run, part):
    lis = fault_run.start("lis_consumer", {"DATABASE_URL": fresh_database, "THREADS": "8", "DB_POOL_SIZE": "2"})
    fault_run.remember_phi(FAMILY)
    run = Run(lis.url, sa.create_engine(fresh_database))
    broken: list[str] = []
    try:
        assert _valid(run, 4) == [], "the consumer does not apply valid messages to begin with"
        for poison in poisons()[part::PARTS]:
            broken += _check(run, poison)
            problems = _valid(run, VALID_AFTER_EACH)
            if problems:
                broken.append(f"after {poison.label!r}: {len(problems)} valid ORUs failed, e.g. {problems[:2]}")
            if failed := run.failed():
                broken.append(f"after {poison.label!r}: {len(failed)} rows left failed, e.g. {failed[0].error_code}")
                break  # every later poison would be blamed for the same rows
        assert not broken, "\n".join(broken[:40])
    finally:
        run.db.dispose()


def _check(run: Run, poison: Poison) -> list[str]:
    problems: list[str] = []
    label = poison.label
    resp = run.post(poison)
    if resp.status_code >= 500:
        return [f"{label!r}: HTTP {resp.status_code} (a redelivery loop)"]
    if poison.expect_status is not None and resp.status_code != poison.expect_status:
        problems.append(f"{label!r}: HTTP {resp.status_code}, expected {poison.expect_status}")
    if resp.status_code != 200 and not resp.headers.get("Content-Type", "").startswith("application/problem+json"):
        problems.append(f"{label!r}: a {resp.status_code} without a problem body")
    rows = run.new_rows()
    if resp.status_code == 200 and not rows:
        problems.append(f"{label!r}: acknowledged but nothing stored")
    for row in rows:
        if row.status not in HANDLED:
            problems.append(f"{label!r}: stored as {row.status} ({row.error_code})")
    if poison.expect_reason and [r.error_code for r in rows] != [poison.expect_reason]:
        problems.append(f"{label!r}: stored {[(r.status, r.error_code) for r in rows]}, expected {poison.expect_reason}")
    if poison.expect_warning and not any(poison.expect_warning in (r.warnings or []) for r in rows):
        problems.append(f"{label!r}: no warning {poison.expect_warning} in {[r.warnings for r in rows]}")
    again = run.post(poison)
    if again.status_code != resp.status_code:
        problems.append(f"{label!r}: redelivered, HTTP {again.status_code} after {resp.status_code}")
    redelivered = run.rows([r.id for r in rows])
    if [(r.status, r.delivery_count) for r in redelivered] != [(r.status, r.delivery_count + 1) for r in rows]:
        problems.append(f"{label!r}: redelivered, the stored rows went from {[(r.status, r.delivery_count) for r in rows]}"
                        f" to {[(r.status, r.delivery_count) for r in redelivered]} instead of being a duplicate")
    if run.new_rows():
        problems.append(f"{label!r}: the redelivery stored a new row instead of being a duplicate")
    return problems

