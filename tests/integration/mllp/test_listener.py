"""The listener on a real loopback socket (our Publisher port faked): TLS with client certificates,
the network allowlist, the connection limit, and many concurrent senders."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import pytest

from shared.mllp.frames import wrap
from shared.mllp.server import Limits, MllpServer, parse_networks, tls_context
from tests.support.certs import certificate, write_pem


class Recorder:
    def __init__(self) -> None:
        self.published: list[tuple[bytes, str]] = []

    async def publish(self, data: bytes, *, ordering_key: str, timeout: float) -> str:
        await asyncio.sleep(0)  # let other connections interleave
        self.published.append((data, ordering_key))
        return str(len(self.published))


def _msg(facility: str, control: str) -> bytes:
    return f"MSH|^~\\&|APP|{facility}|PM|HOSP|20240101||ADT^A08|{control}|P|2.5\rPID|1||X^^^L\r".encode()


async def _exchange(port: int, frames: list[bytes], tls: ssl.SSLContext | None = None) -> list[bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=tls, server_hostname="127.0.0.1" if tls else None)
    acks = []
    try:
        for frame in frames:
            writer.write(wrap(frame))
            await writer.drain()
            acks.append(await reader.readuntil(b"\x1c\r"))
    finally:
        writer.close()
    return acks


def _msa(ack: bytes) -> list[bytes]:
    return next(line for line in ack.strip(b"\x0b\x1c\r").split(b"\r") if line.startswith(b"MSA|")).split(b"|")


async def _closed_unanswered(reader: asyncio.StreamReader) -> bool:
    """The server closed the connection without answering (a close with unread input arrives as a reset)."""
    try:
        return await reader.read() == b""
    except ConnectionResetError:
        return True


def _run(server: MllpServer, body) -> object:
    async def main():
        port = await server.start("127.0.0.1", 0)
        try:
            return await body(port)
        finally:
            await server.close()

    return asyncio.run(main())


def test_fifty_concurrent_connections_each_answered_for_its_own_messages():
    recorder = Recorder()

    async def body(port: int):
        return await asyncio.gather(*(_exchange(port, [_msg(f"F{n}", f"C{n}-{i}") for i in range(5)]) for n in range(50)))

    results = _run(MllpServer(recorder), body)
    for n, acks in enumerate(results):
        assert [_msa(a)[1:3] for a in acks] == [[b"AA", f"C{n}-{i}".encode()] for i in range(5)]
    for n in range(50):  # each sender's messages published in the order sent
        assert [d.split(b"|")[9] for d, key in recorder.published if key == f"F{n}"] == [f"C{n}-{i}".encode() for i in range(5)]


def test_a_connection_from_outside_the_allowlist_is_closed_unread():
    recorder = Recorder()

    async def body(port: int):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(wrap(_msg("F", "C1")))
        closed = await _closed_unanswered(reader)
        writer.close()
        return closed

    assert _run(MllpServer(recorder, Limits(), parse_networks("10.0.0.0/8")), body) is True
    assert recorder.published == []
    assert _run(MllpServer(recorder, Limits(), parse_networks("127.0.0.0/8")), lambda p: _exchange(p, [_msg("F", "C2")]))
    assert len(recorder.published) == 1


def test_beyond_the_connection_limit_a_connection_is_closed():
    recorder = Recorder()

    async def body(port: int):
        first_reader, first = await asyncio.open_connection("127.0.0.1", port)
        first.write(wrap(_msg("F", "C1")))
        await first_reader.readuntil(b"\x1c\r")  # the first connection is established and counted
        second_reader, second = await asyncio.open_connection("127.0.0.1", port)
        second.write(wrap(_msg("F", "C2")))
        refused = await _closed_unanswered(second_reader)
        first.close()
        second.close()
        return refused

    assert _run(MllpServer(recorder, Limits(max_connections=1)), body) is True
    assert [d.split(b"|")[9] for d, _ in recorder.published] == [b"C1"]


# --- TLS ------------------------------------------------------------------------------------


@pytest.fixture()
def pki(tmp_path: Path) -> dict[str, Path]:
    ca = certificate("test-ca", None, ca=True)
    other_ca = certificate("other-ca", None, ca=True)
    files = {"ca": write_pem(tmp_path / "ca", *ca)[0]}
    files["server"], files["server_key"] = write_pem(tmp_path / "server", *certificate("mllp", ca))
    files["client"], files["client_key"] = write_pem(tmp_path / "client", *certificate("lis", ca))
    files["stranger"], files["stranger_key"] = write_pem(tmp_path / "stranger", *certificate("lis", other_ca))
    return files


def _client(pki: dict[str, Path], who: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki["ca"]))
    if who:
        context.load_cert_chain(str(pki[who]), str(pki[f"{who}_key"]))
    return context


def test_tls_with_a_client_certificate_signed_by_the_configured_ca(pki):
    recorder = Recorder()
    server = MllpServer(recorder, tls=tls_context(str(pki["server"]), str(pki["server_key"]), str(pki["ca"])))
    [ack] = _run(server, lambda port: _exchange(port, [_msg("F", "T1")], _client(pki, "client")))
    assert _msa(ack)[1:3] == [b"AA", b"T1"] and len(recorder.published) == 1


@pytest.mark.parametrize("who", [None, "stranger"])
def test_tls_without_an_acceptable_client_certificate_is_refused(pki, who):
    recorder = Recorder()
    server = MllpServer(recorder, tls=tls_context(str(pki["server"]), str(pki["server_key"]), str(pki["ca"])))
    with pytest.raises((ssl.SSLError, ConnectionError, asyncio.IncompleteReadError)):
        _run(server, lambda port: _exchange(port, [_msg("F", "T2")], _client(pki, who)))
    assert recorder.published == []
