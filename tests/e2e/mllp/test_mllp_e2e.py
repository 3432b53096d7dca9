"""A LIS sending over MLLP with python-hl7's client (not ours) → the adapter → the Pub/Sub emulator → lis_consumer.

Asserts what the lab needs: every message answered AA is stored and applied once, in the order each
sender sent it; what is not HL7 or too large is answered AR on a connection that stays usable; while
Pub/Sub is down the sender is answered AE, and its resend after the outage is applied — once.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid

import pytest
import sqlalchemy as sa
from hl7.client import MLLPClient

from shared.db import unit_of_work
from shared.devtools.devrouter import emulator as emulator_mod
from shared.models import LisMessage
from tests.support.hl7_tag import tag
from tests.support.lis_samples import by_file
from tests.support.processes import free_port

from .conftest import Stack, adapter_env, start_adapter

pytestmark = pytest.mark.e2e
SAMPLE = by_file()["aidbox__ADT-A08__1.hl7"].raw


def _message(facility: str, run: str) -> bytes:
    return tag(SAMPLE, run).replace(b"|FACILITY|", f"|{facility}|".encode(), 1)


def _msa(ack: bytes) -> list[str]:
    [line] = [seg for seg in ack.strip(b"\x0b\x1c\r\n").split(b"\r") if seg.startswith(b"MSA|")]
    return line.decode().split("|")


def _rows(facility: str) -> list:
    with unit_of_work() as uow:
        return list(uow.session.execute(
            sa.select(LisMessage.control_id, LisMessage.status, LisMessage.ordering_key, LisMessage.attributes,
                      LisMessage.ce_source, LisMessage.received_at)
            .where(LisMessage.sending_facility == facility).order_by(LisMessage.received_at)).all())


def _wait_rows(facility: str, count: int, timeout: float = 90.0) -> list:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = _rows(facility)
        if len(rows) >= count:
            return rows
        time.sleep(0.25)
    raise AssertionError(f"{len(_rows(facility))} of {count} messages stored before the timeout")


def _send_one(port: int, message: bytes) -> bytes:
    with MLLPClient("127.0.0.1", port) as client:
        return client.send_message(message)


def _send_all(port: int, messages: list[bytes], acks: list[bytes]) -> None:
    with MLLPClient("127.0.0.1", port) as client:
        for message in messages:
            acks.append(client.send_message(message))


def test_two_senders_on_their_own_connections_arrive_once_in_order_with_their_acks(stack: Stack):
    senders = {f"FAC-{uuid.uuid4().hex[:6]}": [] for _ in range(2)}
    sent = {facility: [_message(facility, f"{uuid.uuid4().hex[:6]}-{i}") for i in range(6)] for facility in senders}
    threads = [threading.Thread(target=_send_all, args=(stack.adapter.port, sent[f], senders[f])) for f in senders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    for facility, acks in senders.items():
        controls = [m.split(b"|")[9].decode() for m in sent[facility]]
        assert [_msa(ack)[:3] for ack in acks] == [["MSA", "AA", c] for c in controls]
        rows = _wait_rows(facility, len(controls))
        assert [r.control_id for r in rows] == controls  # applied in the order sent
        assert {r.status for r in rows} == {"processed"}
        assert rows[0].attributes == {"content-type": "application/hl7-v2", "origin": "mllp"}
        assert rows[0].ce_source == stack.source
    keys: dict[str, list[str]] = {}
    for message in stack.pulled():
        keys.setdefault(message.get("orderingKey", ""), []).append(message["messageId"])
    assert all(len(keys.get(facility, [])) == 6 for facility in senders)  # one ordering key per sending facility


def test_a_resent_message_is_acknowledged_again_and_applied_once(stack: Stack):
    facility = f"FAC-{uuid.uuid4().hex[:6]}"
    message = _message(facility, uuid.uuid4().hex[:6])
    with MLLPClient("127.0.0.1", stack.adapter.port) as client:
        first, second = client.send_message(message), client.send_message(message)
    assert _msa(first)[1] == _msa(second)[1] == "AA"
    rows = _wait_rows(facility, 2)
    assert sorted(r.status for r in rows) == ["duplicate", "processed"]


def test_not_hl7_and_oversized_frames_are_rejected_and_the_connection_still_serves(stack: Stack):
    facility = f"FAC-{uuid.uuid4().hex[:6]}"
    message = _message(facility, uuid.uuid4().hex[:6])
    with MLLPClient("127.0.0.1", stack.adapter.port) as client:
        not_hl7 = client.send_message(b"GET / HTTP/1.1")
        too_large = client.send_message(message + b"NTE|1||" + b"x" * 70_000 + b"\r")
        ok = client.send_message(message)
    assert _msa(not_hl7)[1] == "AR" and b"ERR|||100^" in not_hl7
    assert _msa(too_large)[1] == "AR" and b"ERR|||207^" in too_large
    assert _msa(ok)[1:3] == ["AA", message.split(b"|")[9].decode()]
    rows = _wait_rows(facility, 1)
    assert [r.status for r in rows] == ["processed"]  # the rejected frames were never published


def test_a_message_split_across_reads_with_lf_ends_and_a_bom(stack: Stack):
    facility = f"FAC-{uuid.uuid4().hex[:6]}"
    message = b"\xef\xbb\xbf" + _message(facility, uuid.uuid4().hex[:6]).replace(b"\r", b"\n")
    framed = b"\x0b" + message + b"\x1c\r"
    with socket.create_connection(("127.0.0.1", stack.adapter.port), timeout=30) as sock:
        for i in range(0, len(framed), 17):
            sock.sendall(framed[i : i + 17])
            time.sleep(0.005)  # separate TCP segments
        ack = sock.recv(4096)
    assert _msa(ack)[1] == "AA"
    [row] = _wait_rows(facility, 1)
    assert row.status == "processed"


def test_an_idle_connection_is_closed_by_the_adapter(stack: Stack):
    with socket.create_connection(("127.0.0.1", stack.adapter.port), timeout=60) as sock:
        assert sock.recv(1) == b""  # closed after MLLP_IDLE_TIMEOUT_SECONDS (5) of silence
    assert "idle_timeout" in stack.adapter.logs()


def test_pubsub_outage_answers_ae_and_the_resend_is_applied_once(lis, tmp_path):
    port = free_port()
    proc = emulator_mod.start("127.0.0.1", port, tmp_path / "emulator-1.log")
    emulator = emulator_mod.Emulator(f"127.0.0.1:{port}", "patient-mgt-outage")
    topic = f"lis-{uuid.uuid4().hex[:8]}"
    adapter = start_adapter(adapter_env(emulator, topic), tmp_path)
    stack = Stack(emulator, topic, lis, adapter)
    try:
        stack.wire()
        facility = f"FAC-{uuid.uuid4().hex[:6]}"
        before, during = _message(facility, uuid.uuid4().hex[:6]), _message(facility, uuid.uuid4().hex[:6])
        # One connection per send, as a LIS reconnects: the adapter closes a connection idle for 5 s.
        assert _msa(_send_one(adapter.port, before))[1] == "AA"
        _wait_rows(facility, 1)
        emulator_mod.stop(proc)  # Pub/Sub is down
        refused = _send_one(adapter.port, during)
        assert _msa(refused)[1:3] == ["AE", during.split(b"|")[9].decode()] and b"ERR|||207^" in refused
        proc = emulator_mod.start("127.0.0.1", port, tmp_path / "emulator-2.log")
        stack.wire()  # the emulator keeps nothing across a restart
        # ...and numbers messages from 1 again, which real Pub/Sub never does: burn the ids the first
        # run used, or the consumer would rightly take the resend for a redelivery of `before`.
        emulator.create_topic("scratch")
        for _ in range(20):
            emulator.publish("scratch", b"x")
        answers = []
        for _ in range(20):  # what a LIS does with AE: send the same message again
            answers.append(_msa(_send_one(adapter.port, during))[1])
            if answers[-1] == "AA":
                break
        assert answers[-1] == "AA"
        rows = _wait_rows(facility, 2)
        applied = [r.control_id for r in rows if r.status == "processed"]
        assert applied == [before.split(b"|")[9].decode(), during.split(b"|")[9].decode()]
        assert {r.status for r in rows} <= {"processed", "duplicate"}
    finally:
        adapter.stop()
        emulator_mod.stop(proc)
