"""Blocking sockets bounded by the kernel's timeouts instead of Python's.

A socket with a Python timeout (``settimeout(5)``) is non-blocking underneath, and CPython polls it
before every ``recv`` and every ``send``: two system calls, and two hand-overs of the GIL, per read or
write instead of one. Under load every hand-over is a chance for another thread to take the GIL and for
this one to wait for it back (docs/performance.md, "Tenth round"). A blocking socket with
``SO_RCVTIMEO``/``SO_SNDTIMEO`` waits in the ``recv``/``send`` itself and gives up after the same time:
the same per-call bound, one system call. It then fails with ``EAGAIN`` (``BlockingIOError``), which
``KernelTimedIO`` — the raw file under a buffered reader/writer — reports as the ``TimeoutError`` a
Python timeout would have raised.

Not for TLS sockets (``can_bound``): on a blocking ``ssl.SSLSocket`` CPython retries a read that
ended with ``EAGAIN``, so the bound would never end the wait (seen: a 0.8 s statement under a 0.5 s
bound ran to its end).
"""

from __future__ import annotations

import io
import socket
import struct
from typing import Any

_TIMEVAL = struct.Struct("@ll")  # struct timeval {time_t tv_sec; suseconds_t tv_usec} (Linux, 64-bit)


def can_bound(sock: socket.socket) -> bool:
    """Whether ``bound`` would bound ``sock``'s waits: not a TLS socket's."""
    return type(sock).__module__ != "ssl"


def bound(sock: socket.socket, seconds: float) -> None:
    """Make ``sock`` blocking, with each ``recv`` and ``send`` bounded by ``seconds`` in the kernel.
    Zero would mean "no bound" to the kernel: a bound that has run out is the shortest one instead."""
    if not can_bound(sock):
        raise ValueError("a TLS socket's waits are not bounded by the kernel's timeouts")
    if sock.gettimeout() is not None:
        sock.settimeout(None)
    micros = max(1, int(seconds * 1_000_000))
    value = _TIMEVAL.pack(micros // 1_000_000, micros % 1_000_000)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, value)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, value)


def bounds(sock: socket.socket) -> tuple[float, float]:
    """The kernel's (receive, send) bounds of ``sock`` in seconds; 0.0 is none."""
    out = []
    for option in (socket.SO_RCVTIMEO, socket.SO_SNDTIMEO):
        sec, usec = _TIMEVAL.unpack(sock.getsockopt(socket.SOL_SOCKET, option, _TIMEVAL.size))
        out.append(sec + usec / 1_000_000)
    return out[0], out[1]


class KernelTimedIO(socket.SocketIO):
    """``socket.SocketIO`` for a ``bound`` socket: a read or write the bound cut short raises
    ``TimeoutError``, where SocketIO would return None as on a non-blocking socket (a buffered reader
    then hands None to its caller as if it were data)."""

    def readinto(self, b: Any) -> int:
        if self._timeout_occurred:
            raise OSError("cannot read from timed out object")
        try:
            return self._sock.recv_into(b)
        except BlockingIOError:
            self._timeout_occurred = True
            raise TimeoutError("timed out") from None

    def write(self, b: Any) -> int:
        try:
            return self._sock.send(b)
        except BlockingIOError:
            raise TimeoutError("timed out") from None


def buffered(sock: socket.socket) -> io.BufferedRWPair:
    """What ``sock.makefile("rwb")`` returns, over ``KernelTimedIO``."""
    raw = KernelTimedIO(sock, "rwb")
    sock._io_refs += 1  # type: ignore[attr-defined] — as makefile counts it: the socket closes with its last file
    return io.BufferedRWPair(raw, raw, io.DEFAULT_BUFFER_SIZE)
