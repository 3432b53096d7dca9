"""Sending one message to the LIS over MLLP and waiting for its answer; retries with backoff.

The LIS answers a frame with an ACK (MSA-1 ``AA``/``CA`` accepted; ``AE``/``AR``/``CE``/``CR`` not),
or with an application response to an order (ORR^O02 for ORM, ORL^O22 for OML) that also carries
ORC-1 (``OK`` accepted, ``UA``/``UC`` refused) and the filler number it gave the order (ORC-3).
`deliver` sends until the LIS accepts, or gives up after `attempts` — the caller then
dead-letters the message. No ACK within `ack_timeout` counts as a failed attempt: the LIS may
have stored it, so the message is sent again under the same MSH-10, which a LIS deduplicates on.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from .ack import read_msh
from .frames import FrameReader, wrap

ACCEPTED = frozenset({"AA", "CA"})


@dataclass(frozen=True)
class Answer:
    code: str  # MSA-1, or "timeout" / "no_connection" / "no_ack" (not an HL7 answer)
    control_id: str | None = None  # MSA-2
    order_control: str | None = None  # ORC-1 of an ORR/ORL
    filler_number: str | None = None  # ORC-3.1 of an ORR/ORL
    error: str | None = None  # ERR-3.1 (table 0357 code)

    @property
    def accepted(self) -> bool:
        return self.code in ACCEPTED and self.order_control not in ("UA", "UC", "UX", "UD")


@dataclass(frozen=True)
class Outcome:
    delivered: bool
    attempts: int
    last: Answer


def read_answer(data: bytes) -> Answer:
    """MSA, ORC and ERR of the LIS's answer (a frame's content)."""
    msh = read_msh(data)
    if msh is None:
        return Answer("no_ack")
    field, component = msh.field, msh.component
    segments = {}
    for line in data.replace(b"\n", b"\r").split(b"\r"):
        tag = line[:3]
        if tag in (b"MSA", b"ORC", b"ERR") and tag not in segments:
            segments[tag] = line.split(field)

    def get(tag: bytes, n: int) -> str | None:
        fields = segments.get(tag, [])
        value = fields[n].split(component, 1)[0] if n < len(fields) else b""
        return value.decode("utf-8", "replace") or None

    if b"MSA" not in segments:
        return Answer("no_ack")
    return Answer(code=get(b"MSA", 1) or "no_ack", control_id=get(b"MSA", 2), order_control=get(b"ORC", 1),
                  filler_number=get(b"ORC", 3), error=get(b"ERR", 3))


async def send_once(host: str, port: int, message: bytes, *, ack_timeout: float, tls: ssl.SSLContext | None = None,
                    max_answer_bytes: int = 1_048_576) -> Answer:
    """One connection, one frame, one answer."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port, ssl=tls), ack_timeout)
    except (OSError, TimeoutError, ssl.SSLError):
        return Answer("no_connection")
    try:
        writer.write(wrap(message))
        await writer.drain()
        frame = await FrameReader(reader, max_answer_bytes).next(ack_timeout)
        if frame is None or frame.data is None:
            return Answer("no_ack")
        return read_answer(frame.data)
    except TimeoutError:
        return Answer("timeout")
    except (OSError, ssl.SSLError):
        return Answer("no_ack")
    finally:
        writer.close()


async def deliver(send: Callable[[], Awaitable[Answer]], *, attempts: int, backoff: float, max_backoff: float = 300.0,
                  sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> Outcome:
    """`send` until the LIS accepts or `attempts` are used; waits backoff × 2ⁿ (capped) in between."""
    answer = Answer("no_connection")
    for attempt in range(1, attempts + 1):
        answer = await send()
        if answer.accepted:
            return Outcome(True, attempt, answer)
        if attempt < attempts:
            await sleep(min(max_backoff, backoff * 2 ** (attempt - 1)))
    return Outcome(False, attempts, answer)
