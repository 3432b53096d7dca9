"""What each frame is answered, with our own Publisher port faked (the real one is in tests/e2e/mllp)."""

import asyncio

from shared.events.publishing import PublishError
from shared.mllp.frames import Frame
from shared.mllp.server import Limits, MllpServer, parse_networks


class FakePublisher:
    def __init__(self, fail_on: bytes | None = None) -> None:
        self.published: list[tuple[bytes, str]] = []
        self.fail_on = fail_on

    async def publish(self, data: bytes, *, ordering_key: str, timeout: float) -> str:
        if self.fail_on is not None and self.fail_on in data:
            raise PublishError("pubsub_ServiceUnavailable")
        self.published.append((data, ordering_key))
        return str(len(self.published))


def _answer(server: MllpServer, data: bytes | None) -> list[list[bytes]]:
    ack = asyncio.run(server.answer(Frame(data, len(data or b"x" * 99))))
    return [line.split(b"|") for line in ack.rstrip(b"\r").split(b"\r")]


def _msg(control: str, facility: str = "LAB1") -> bytes:
    return f"MSH|^~\\&|APP|{facility}|PM|HOSP|20240101||ADT^A08|{control}|P|2.5\rPID|1||X^^^LAB\r".encode()


def test_a_message_is_published_raw_keyed_by_facility_then_aa():
    pub = FakePublisher()
    *_, msa = _answer(MllpServer(pub), _msg("C1"))
    assert msa == [b"MSA", b"AA", b"C1"]
    assert pub.published == [(_msg("C1").rstrip(b"\r"), "LAB1")]


def test_bom_and_lf_line_ends_are_accepted():
    pub = FakePublisher()
    raw = b"\xef\xbb\xbf" + _msg("C2").replace(b"\r", b"\r\n")
    assert _answer(MllpServer(pub), raw)[1][:3] == [b"MSA", b"AA", b"C2"]
    assert len(pub.published) == 1 and pub.published[0][0].startswith(b"MSH|")


def test_a_batch_is_split_into_its_messages_each_published():
    pub = FakePublisher()
    batch = b"FHS|^~\\&\rBHS|^~\\&\r" + _msg("B1") + _msg("B2", "LAB2") + b"BTS|2\rFTS|1\r"
    assert _answer(MllpServer(pub), batch)[1][:3] == [b"MSA", b"AA", b"B1"]
    assert [(d.split(b"|")[9], key) for d, key in pub.published] == [(b"B1", "LAB1"), (b"B2", "LAB2")]


def test_not_hl7_is_rejected_and_nothing_published():
    pub = FakePublisher()
    msh, msa, err = _answer(MllpServer(pub), b"hello, world")
    assert msa[:2] == [b"MSA", b"AR"] and err[3].startswith(b"100^")
    assert pub.published == []


def test_an_oversized_frame_is_rejected():
    pub = FakePublisher()
    _, msa, err = _answer(MllpServer(pub), None)
    assert msa[:2] == [b"MSA", b"AR"] and err[3].startswith(b"207^")
    assert pub.published == []


def test_a_failed_publish_is_answered_ae_so_the_sender_resends():
    pub = FakePublisher(fail_on=b"|C9|")
    _, msa, err = _answer(MllpServer(pub), _msg("C9"))
    assert msa[:3] == [b"MSA", b"AE", b"C9"] and err[3].startswith(b"207^")


def test_one_failure_in_a_batch_fails_the_frame():
    pub = FakePublisher(fail_on=b"|B2|")
    batch = b"BHS|^~\\&\r" + _msg("B1") + _msg("B2") + b"BTS|2\r"
    assert _answer(MllpServer(pub), batch)[1][1] == b"AE"


def test_allowlist_by_network_ipv4_and_mapped_ipv6():
    server = MllpServer(FakePublisher(), Limits(), parse_networks("10.0.0.0/8, 192.168.1.7/32"))
    assert server.allowed("10.2.3.4") and server.allowed("192.168.1.7") and server.allowed("::ffff:10.0.0.1")
    assert not server.allowed("192.168.1.8") and not server.allowed("127.0.0.1") and not server.allowed(None)
    assert MllpServer(FakePublisher()).allowed("203.0.113.9")
