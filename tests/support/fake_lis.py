"""A fake LIS for tests: an MLLP server on 127.0.0.1 (its own event-loop thread) that answers each
order message with an ORR^O02 accepting it (ORC-1 OK, filler number ``F-<MSH-10>``), with AE (refused),
or not at all (silent: the sender times out). What it does is commanded per placer number
(`command`), else by the control id: ``REFUSE…`` refused, ``SILENT…`` silent, anything else accepted.
It records every frame it received."""

from __future__ import annotations

import asyncio
import threading

from typing import Literal

from shared.mllp.ack import build_ack, read_msh
from shared.mllp.frames import FrameReader, wrap

Mode = Literal["accept", "refuse", "silent"]


class FakeLis:
    def __init__(self) -> None:
        self.received: list[bytes] = []
        self.commands: dict[bytes, Mode] = {}
        self.loop = asyncio.new_event_loop()
        self.port = 0
        ready = threading.Event()
        threading.Thread(target=self._run, args=(ready,), daemon=True).start()
        if not ready.wait(10):
            raise RuntimeError("the fake LIS did not start")

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        ready.set()
        self.loop.run_forever()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        frames = FrameReader(reader, 1_000_000)
        while (frame := await frames.next(60)) is not None:
            self.received.append(frame.data or b"")
            msh = read_msh(frame.data or b"")
            control = msh.get(10) if msh else b""
            orc = next((line for line in (frame.data or b"").split(b"\r") if line.startswith(b"ORC|")), b"ORC||")
            placer = orc.split(b"|")[2]
            mode = self.commands.get(placer.split(b"^")[0]) or (
                "refuse" if control.startswith(b"REFUSE") else "silent" if control.startswith(b"SILENT") else "accept")
            if mode == "silent":
                continue
            if mode == "refuse":
                answer = build_ack(msh, "AE", error=("207", "Refused"))
            else:
                answer = (build_ack(msh, "AA").replace(b"|ACK^", b"|ORR^").replace(b"ORR^O01", b"ORR^O02")
                          + b"ORC|OK|" + placer + b"|F-" + control + b"^LAB\r")
            writer.write(wrap(answer))
            await writer.drain()
        writer.close()

    def command(self, placer_number: str, mode: Mode) -> None:
        """From now on, answer the messages about this order (ORC-2.1) so."""
        self.commands[placer_number.encode()] = mode

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
