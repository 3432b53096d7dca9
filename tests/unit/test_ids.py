"""shared.ids.uuid4: random version-4 UUIDs from the kernel's bytes read 4 KiB at a time — never one
handed out twice, in threads or across a fork, and each as uuid.uuid4 shapes it."""

from __future__ import annotations

import os
import threading
import uuid

import pytest

from shared import ids


def test_each_id_is_an_rfc_4122_version_4_uuid() -> None:
    made = [ids.uuid4() for _ in range(2_000)]
    assert all(u.version == 4 and u.variant == uuid.RFC_4122 for u in made)
    assert len(set(made)) == len(made)
    # the 122 random bits vary: every hex digit outside the fixed nibbles takes many values
    text = [u.hex for u in made]
    for position in (0, 11, 13, 17, 31):
        assert len({t[position] for t in text}) > 8


def test_the_kernel_is_read_once_per_256_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[int] = []

    def counted(n: int) -> bytes:
        reads.append(n)
        return os.urandom(n)

    monkeypatch.setattr(ids, "_pool", ids._Pool())
    monkeypatch.setattr(ids, "_read", counted)
    made = [ids.uuid4() for _ in range(600)]
    assert reads == [4096, 4096, 4096]
    assert len(set(made)) == 600


def test_the_bytes_are_the_kernels_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing is derived or reused: id n is bytes 16n..16n+15 of the read, with the version and
    variant bits set as uuid.UUID(bytes=…, version=4) sets them."""
    chunk = os.urandom(4096)
    monkeypatch.setattr(ids, "_pool", ids._Pool())
    monkeypatch.setattr(ids, "_read", lambda n: chunk)
    made = [ids.uuid4() for _ in range(256)]
    assert made == [uuid.UUID(bytes=chunk[i:i + 16], version=4) for i in range(0, 4096, 16)]


def test_hex_ids_come_from_the_same_bytes_without_overlapping_the_uuids(monkeypatch: pytest.MonkeyPatch) -> None:
    """Trace and span ids (shared.telemetry.tracecontext) take the pool's next bytes, in hex: none of
    them is part of a UUID handed out, and a read is made only when the chunk cannot hold the next one."""
    chunks = [os.urandom(4096), os.urandom(4096)]
    reads: list[int] = []

    def counted(n: int) -> bytes:
        reads.append(n)
        return chunks[len(reads) - 1]

    monkeypatch.setattr(ids, "_pool", ids._Pool())
    monkeypatch.setattr(ids, "_read", counted)
    first = ids.uuid4()
    trace, span = ids.token_hex(16), ids.token_hex(8)
    second = ids.uuid4()
    assert first == uuid.UUID(bytes=chunks[0][0:16], version=4)
    assert (trace, span) == (chunks[0][16:32].hex(), chunks[0][32:40].hex())
    assert second == uuid.UUID(bytes=chunks[0][40:56], version=4)
    for _ in range((4096 - 56) // 16):  # 252 more ids: the chunk keeps 8 bytes
        ids.uuid4()
    assert reads == [4096]
    assert ids.token_hex(8) == chunks[0][4088:4096].hex() and reads == [4096]
    assert ids.token_hex(16) == chunks[1][0:16].hex() and reads == [4096, 4096]


def test_threads_never_get_the_same_id() -> None:
    per_thread: list[list[uuid.UUID]] = [[] for _ in range(8)]
    start = threading.Barrier(8)

    def make(out: list[uuid.UUID]) -> None:
        start.wait()
        out.extend(ids.uuid4() for _ in range(5_000))

    threads = [threading.Thread(target=make, args=(out,)) for out in per_thread]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    made = [u for out in per_thread for u in out]
    assert len(made) == 40_000
    assert len(set(made)) == 40_000


def test_a_forked_child_does_not_hand_out_its_parents_bytes() -> None:
    """gunicorn forks its workers from a master that may have made ids: the bytes the parent read and
    had not handed out yet must not be handed out again by the child."""
    ids.uuid4()  # the parent now holds 255 ids' worth of unread bytes
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next ids and leave without running the rest of pytest
        try:
            os.close(read)
            os.write(write, b"".join(ids.uuid4().bytes for _ in range(100)))
        finally:
            os._exit(0)
    os.close(write)
    data = b""
    while chunk := os.read(read, 65536):
        data += chunk
    os.close(read)
    os.waitpid(pid, 0)
    child = {uuid.UUID(bytes=data[i:i + 16]) for i in range(0, len(data), 16)}
    parent = {ids.uuid4() for _ in range(100)}
    assert len(child) == 100
    assert not child & parent
