"""The asyncio MLLP listener: one task per connection, one ACK per frame, `AA` only once stored.

Per frame: `split_messages` unwraps it (BOM, LF/CRLF line ends, FHS/BHS batches, UTF-16/32);
each message is published on its own (ordering key = its MSH-4) and the frame is answered
once Pub/Sub has confirmed every one of them:

| Frame | Answer |
| --- | --- |
| every message published | `AA` |
| a publish failed or timed out (the sender resends; copies already stored are deduplicated by the consumer on (MSH-4, MSH-10)) | `AE`, ERR 207 |
| no MSH / not HL7 | `AR`, ERR 100 |
| over `MLLP_MAX_FRAME_BYTES` (read to its end and discarded; the connection stays open) | `AR`, ERR 207 |

The ACK answers the frame's first message (a batch is acknowledged as a whole). Connections
from outside `MLLP_ALLOWED_NETWORKS`, or beyond `MLLP_MAX_CONNECTIONS`, are closed before a
byte is read; a connection silent for `MLLP_IDLE_TIMEOUT_SECONDS` is closed. Logs carry codes
and counts only, never message content.
"""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
from collections.abc import Sequence
from dataclasses import dataclass

from shared.events.publishing import PublishError
from shared.hl7 import HL7Error, split_messages
from shared.log import get_logger

from .ack import build_ack, read_msh
from .frames import Frame, FrameReader, wrap
from .publish import Publisher, ordering_key

log = get_logger(__name__)

NOT_HL7 = ("100", "Not an HL7 message")
TOO_LARGE = ("207", "Frame exceeds the maximum size")
NOT_STORED = ("207", "Not stored; send again")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Limits:
    max_frame_bytes: int = 5_242_880
    idle_timeout: float = 300.0
    publish_timeout: float = 10.0
    max_connections: int = 200


def parse_networks(text: str) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(item.strip(), strict=False) for item in text.split(",") if item.strip())


def tls_context(cert_file: str, key_file: str | None, client_ca_file: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_file, key_file)
    if client_ca_file:
        context.load_verify_locations(client_ca_file)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


class MllpServer:
    def __init__(self, publisher: Publisher, limits: Limits = Limits(), networks: Sequence[Network] = (),
                 tls: ssl.SSLContext | None = None) -> None:
        self.publisher = publisher
        self.limits = limits
        self.networks = tuple(networks)
        self.tls = tls
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, host: str, port: int) -> int:
        """Listen; returns the bound port."""
        self._server = await asyncio.start_server(self._connection, host, port, ssl=self.tls,
                                                  ssl_handshake_timeout=30 if self.tls else None, limit=65536)
        bound = self._server.sockets[0].getsockname()[1]
        log.info("mllp listening", extra={"fields": {"port": bound, "tls": self.tls is not None,
                                                     "client_certificates": bool(self.tls and self.tls.verify_mode == ssl.CERT_REQUIRED)}})
        return bound

    async def close(self) -> None:
        """Stop listening and end every connection (a frame not yet answered is resent by its sender)."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def allowed(self, peer: str | None) -> bool:
        if not self.networks:
            return True
        try:
            address = ipaddress.ip_address((peer or "").split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        return any(address in network for network in self.networks)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        host = peer[0] if isinstance(peer, tuple) else None
        if not self.allowed(host):
            log.warning("mllp connection refused", extra={"fields": {"reason": "network_not_allowed"}})
            writer.close()
            return
        if self.connections >= self.limits.max_connections:
            log.warning("mllp connection refused", extra={"fields": {"reason": "too_many_connections"}})
            writer.close()
            return
        self.connections += 1
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        frames = FrameReader(reader, self.limits.max_frame_bytes)
        try:
            while True:
                try:
                    frame = await frames.next(self.limits.idle_timeout)
                except (TimeoutError, asyncio.TimeoutError):
                    log.info("mllp connection closed", extra={"fields": {"reason": "idle_timeout"}})
                    break
                if frame is None:
                    break
                writer.write(wrap(await self.answer(frame)))
                await writer.drain()
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
            pass  # the peer went away; whatever it was not answered AA for, it sends again
        except asyncio.CancelledError:
            pass  # close(): shutting down
        finally:
            self.connections -= 1
            self._tasks.discard(task)  # type: ignore[arg-type]
            writer.close()

    async def answer(self, frame: Frame) -> bytes:
        """The ACK for one frame, after publishing its messages."""
        if frame.data is None:
            log.warning("mllp frame rejected", extra={"fields": {"reason": "too_large", "bytes": frame.size}})
            return build_ack(None, "AR", error=TOO_LARGE, text="frame too large")
        try:
            messages = split_messages(frame.data)
        except HL7Error:
            messages = []
        headers = [read_msh(message) for message in messages]
        if not messages or any(h is None for h in headers):
            log.warning("mllp frame rejected", extra={"fields": {"reason": "not_hl7", "bytes": frame.size}})
            return build_ack(headers[0] if headers else None, "AR", error=NOT_HL7, text="not HL7")
        first = headers[0]
        outcomes = await asyncio.gather(
            *(self.publisher.publish(message, ordering_key=ordering_key(h.get(4)), timeout=self.limits.publish_timeout)  # type: ignore[union-attr]
              for message, h in zip(messages, headers, strict=True)),
            return_exceptions=True,
        )
        failures = [o for o in outcomes if isinstance(o, BaseException)]
        if failures:
            codes = sorted({f.code if isinstance(f, PublishError) else type(f).__name__ for f in failures})
            log.warning("mllp publish failed", extra={"fields": {"codes": codes, "messages": len(messages), "failed": len(failures)}})
            return build_ack(first, "AE", error=NOT_STORED, text="not stored")
        log.info("mllp frame stored", extra={"fields": {"messages": len(messages), "bytes": frame.size}})
        return build_ack(first, "AA")
