"""Sending to a LIS over MLLP, against a fake LIS written here: an MLLP server that ACKs, NAKs,
answers ORR with its filler number, or stays silent — on command, attempt by attempt."""

from __future__ import annotations

import asyncio
from datetime import date

from shared.mllp.ack import build_ack, read_msh
from shared.mllp.frames import FrameReader, wrap
from shared.mllp.order_message import OutboundOrder, PatientIdentity, render_order
from shared.mllp.sender import Answer, deliver, read_answer, send_once

ORDER = render_order(OutboundOrder("new", "EV-7", "PM7", "PATIENT-MGT",
                                   PatientIdentity((("LAB-7", "EVTLAB", "MR"),), "Doe", ("Jo",), date(1980, 1, 2), "male"),
                                   code="2345-7", code_system="LN"))


class FakeLis:
    """Answers each frame by the next command: "AA", "AE", "AR", "ORR" (AA + ORC OK + filler), "silent", "close"."""

    def __init__(self, commands: list[str]) -> None:
        self.commands = list(commands)
        self.received: list[bytes] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        frames = FrameReader(reader, 1_000_000)
        try:
            while (frame := await frames.next(30)) is not None:
                self.received.append(frame.data or b"")
                command = self.commands.pop(0) if self.commands else "AA"
                msh = read_msh(frame.data or b"")
                if command == "silent":
                    await asyncio.sleep(3600)
                if command == "close":
                    break
                if command == "ORR":
                    ack = build_ack(msh, "AA").replace(b"ACK^O01", b"ORR^O02") + b"ORC|OK|PM7^PATIENT-MGT|F-123^LAB\r"
                else:
                    ack = build_ack(msh, command, error=("207", "Busy") if command != "AA" else None)
                writer.write(wrap(ack))
                await writer.drain()
        finally:
            writer.close()


def _deliver(lis: FakeLis, attempts: int = 4, ack_timeout: float = 0.5) -> tuple:
    waits: list[float] = []

    async def fake_sleep(seconds: float) -> None:  # the backoff is recorded, not waited
        waits.append(seconds)

    async def main():
        server = await asyncio.start_server(lis.handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            return await deliver(lambda: send_once("127.0.0.1", port, ORDER, ack_timeout=ack_timeout),
                                 attempts=attempts, backoff=2.0, sleep=fake_sleep)
        finally:
            server.close()

    return asyncio.run(main()), waits


def test_accepted_at_once():
    lis = FakeLis(["AA"])
    outcome, waits = _deliver(lis)
    assert outcome.delivered and outcome.attempts == 1 and waits == []
    assert outcome.last.control_id == "EV-7" and lis.received == [ORDER]


def test_an_orr_brings_the_filler_number_and_acceptance():
    outcome, _ = _deliver(FakeLis(["ORR"]))
    assert outcome.delivered and (outcome.last.order_control, outcome.last.filler_number) == ("OK", "F-123")


def test_ae_ar_silence_and_a_dropped_connection_are_retried_with_backoff_until_accepted():
    lis = FakeLis(["AE", "silent", "close", "AR", "AA"])
    outcome, waits = _deliver(lis, attempts=6)
    assert outcome.delivered and outcome.attempts == 5
    assert waits == [2.0, 4.0, 8.0, 16.0]
    assert lis.received == [ORDER] * 5  # the same bytes, same MSH-10, each time


def test_given_up_after_the_attempts_with_the_last_answer_for_the_dead_letter():
    lis = FakeLis(["AE", "AE", "AR"])
    outcome, waits = _deliver(lis, attempts=3)
    assert not outcome.delivered and outcome.attempts == 3 and waits == [2.0, 4.0]
    assert (outcome.last.code, outcome.last.error) == ("AR", "207")


def test_nobody_listening_is_no_connection():
    async def main() -> Answer:
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        return await send_once("127.0.0.1", port, ORDER, ack_timeout=1)

    assert asyncio.run(main()).code == "no_connection"


def test_refusals_inside_an_application_answer_are_not_acceptance():
    assert not read_answer(b"MSH|^~\\&|L|F|P|H|2024||ORR^O02|1|P|2.5.1\rMSA|AA|EV-7\rORC|UA|PM7\r").accepted
    assert read_answer(b"MSH|^~\\&|L|F|P|H|2024||ACK|1|P|2.5.1\rMSA|CA|EV-7\r").accepted
    assert read_answer(b"garbage").code == "no_ack"
