"""MLLP frames cut from a byte stream however it is split across reads."""

import asyncio

import pytest

from shared.mllp.frames import FrameReader, wrap


def _frames(chunks: list[bytes], max_bytes: int = 1000) -> list[tuple[bytes | None, int]]:
    async def run() -> list[tuple[bytes | None, int]]:
        reader = asyncio.StreamReader()
        for chunk in chunks:
            reader.feed_data(chunk)
        reader.feed_eof()
        frames = FrameReader(reader, max_bytes)
        out = []
        while (frame := await frames.next(5)) is not None:
            out.append((frame.data, frame.size))
        return out

    return asyncio.run(run())


def test_several_frames_in_one_read_and_filler_between_them():
    stream = wrap(b"MSH|a") + b"\r\n" + wrap(b"MSH|b") + wrap(b"MSH|c")
    assert [d for d, _ in _frames([stream])] == [b"MSH|a", b"MSH|b", b"MSH|c"]


@pytest.mark.parametrize("size", [1, 2, 3, 7])
def test_a_frame_split_across_reads_at_every_point(size):
    stream = wrap(b"MSH|first\rPID|1") + wrap(b"MSH|second")
    chunks = [stream[i : i + size] for i in range(0, len(stream), size)]
    assert [d for d, _ in _frames(chunks)] == [b"MSH|first\rPID|1", b"MSH|second"]


def test_the_closing_cr_is_optional():
    assert [d for d, _ in _frames([b"\x0bMSH|a\x1c\x0bMSH|b\x1c"])] == [b"MSH|a", b"MSH|b"]


def test_an_oversized_frame_is_reported_and_the_next_one_still_read():
    big = b"MSH|" + b"x" * 5000
    frames = _frames([wrap(big)[i : i + 100] for i in range(0, len(big) + 3, 100)] + [wrap(b"MSH|ok")], max_bytes=1000)
    assert frames == [(None, len(big)), (b"MSH|ok", 6)]


def test_a_frame_exactly_at_the_limit_is_kept():
    assert _frames([wrap(b"M" * 1000)], max_bytes=1000) == [(b"M" * 1000, 1000)]


def test_an_unterminated_frame_at_eof_yields_nothing():
    assert _frames([b"\x0bMSH|never ends"]) == []


def test_silence_raises_timeout():
    async def run() -> None:
        frames = FrameReader(asyncio.StreamReader(), 100)
        await frames.next(0.01)

    with pytest.raises(TimeoutError):
        asyncio.run(run())
