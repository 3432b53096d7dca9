"""Random (version 4) UUIDs for new rows and events, and random hex ids for traces and spans, without
a system call for each.

``uuid.uuid4()`` asks the kernel for 16 bytes (``getrandom``) every time, and Python releases the
interpreter lock around that call. On a threaded worker under load each release lets another thread
take the lock, and the caller then waits to get it back: an 8-OBX ORU makes about 15 ids (its message
row, results, events, the request's own ids), each one such hand-over, and ``strace`` counted 15
``getrandom`` calls per ORU in the consumer (docs/performance.md, "Tenth round").

`uuid4` here reads the kernel's random bytes 4 KiB at a time (256 ids) and hands them out in order.
They are the same CSPRNG output ``uuid.uuid4`` would use, so the ids stay unpredictable; none is
handed out twice, in one process (a lock) or across a fork (a child drops the bytes its parent read:
``os.register_at_fork``, as gunicorn forks its workers from a master that may have made ids).
"""

from __future__ import annotations

import os
import threading
import uuid

_CHUNK = 4096  # bytes read at a time: 256 ids
_SIZE = 16
_VERSION_4 = 0x4000 << 64  # the version nibble (bits 76–79), as uuid.UUID(version=4) sets it
_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))  # the version nibble and the variant's two bits
_RFC_4122 = 0x8000 << 48  # the variant: 10xx


class _Pool:
    __slots__ = ("lock", "buffer", "offset")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.buffer = b""
        self.offset = 0


_pool = _Pool()


def _read(n: int) -> bytes:
    """The kernel's random bytes (a port of its own, so tests can count the reads)."""
    return os.urandom(n)


def _take(size: int) -> bytes:
    """The next ``size`` (≤ 4 KiB) random bytes of the pool, never handed out before."""
    pool = _pool
    with pool.lock:
        start = pool.offset
        if start + size > len(pool.buffer):
            pool.buffer = _read(_CHUNK)
            start = 0
        pool.offset = start + size
        return pool.buffer[start:start + size]


def uuid4() -> uuid.UUID:
    """A random UUID, as ``uuid.uuid4()`` makes it (RFC 4122 variant, version 4)."""
    value = int.from_bytes(_take(_SIZE), "big")
    return uuid.UUID(int=(value & _CLEAR) | _VERSION_4 | _RFC_4122)


def token_hex(nbytes: int) -> str:
    """``nbytes`` random bytes in hex, as ``secrets.token_hex`` makes them (the W3C trace and span ids
    of every request and delivery: ``shared.telemetry.tracecontext``)."""
    return _take(nbytes).hex()


def _forget() -> None:
    """In a forked child: never hand out the bytes the parent read (nor wait on a lock it held)."""
    global _pool
    _pool = _Pool()


os.register_at_fork(after_in_child=_forget)
