"""Cutting a TCP byte stream into MLLP frames: ``<VT> data <FS><CR>``.

Bytes outside a frame (the CR/LF some senders put between frames) are skipped. The closing CR
is optional: a frame ends at FS. A frame longer than the limit is read to its end and
discarded, so the connection stays usable and the sender can be answered AR.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

START, END = b"\x0b", b"\x1c"
_CHUNK = 65536


@dataclass(frozen=True, slots=True)
class Frame:
    data: bytes | None  # None: the frame was over the limit and discarded
    size: int


class FrameReader:
    def __init__(self, reader: asyncio.StreamReader, max_bytes: int) -> None:
        self._reader = reader
        self._max = max_bytes
        self._buffer = bytearray()
        self._in_frame = False
        self._size = 0  # bytes of the current frame so far (kept or discarded)
        self._oversized = False

    async def next(self, idle_timeout: float) -> Frame | None:
        """The next frame; None when the peer closed. TimeoutError when it stayed silent too long."""
        while True:
            frame = self._take()
            if frame is not None:
                return frame
            chunk = await asyncio.wait_for(self._reader.read(_CHUNK), idle_timeout)
            if not chunk:
                return None
            self._buffer += chunk

    def _take(self) -> Frame | None:
        if not self._in_frame:
            start = self._buffer.find(START)
            if start < 0:
                self._buffer.clear()  # nothing but filler between frames
                return None
            del self._buffer[: start + 1]
            self._in_frame, self._size, self._oversized = True, 0, False
        end = self._buffer.find(END)
        if end < 0:
            if self._size + len(self._buffer) > self._max:
                self._size += len(self._buffer)  # over the limit: stop keeping bytes, wait for FS
                self._oversized = True
                self._buffer.clear()
            return None
        size = self._size + end
        data = None if self._oversized or size > self._max else bytes(self._buffer[:end])
        cut = end + 1
        if self._buffer[cut : cut + 1] == b"\r":
            cut += 1
        del self._buffer[:cut]
        self._in_frame = False
        return Frame(data, size)


def wrap(message: bytes) -> bytes:
    return START + message + END + b"\r"
