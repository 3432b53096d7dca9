"""LIS throughput: ORU^R01 push bodies through the lis_consumer process over HTTP, end to end (parse,
match the patient, store message, orders and results), beside the parse-only rate of the parser the
consumer uses (``shared.hl7.parse_message``, in this process, one thread)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import sqlalchemy as sa

from bench.load import fixed_point
from bench.oru import OruGenerator, push_lines
from bench.procs import Fn, MemorySampler


def parse_only(raws: list[bytes], min_seconds: float = 3.0) -> dict:
    from shared.hl7 import parse_message  # noqa: PLC0415

    done = 0
    started = time.perf_counter()
    while time.perf_counter() - started < min_seconds:
        for raw in raws:
            parse_message(raw)
        done += len(raws)
    seconds = time.perf_counter() - started
    return {"messages": done, "seconds": round(seconds, 2), "rate": round(done / seconds, 1)}


def _statuses(url: str, run: str) -> dict[str, int] | str:
    """Stored status of this run's messages (control ids start with the run tag)."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT status, count(*) FROM lis_messages WHERE control_id LIKE :p GROUP BY status"),
                                {"p": f"{run}%"}).all()
        return {status: n for status, n in rows}
    except sa.exc.SQLAlchemyError as exc:
        return f"not verified ({type(exc).__name__})"
    finally:
        engine.dispose()


def run(fn: Fn, url: str, work: Path, concurrencies: list[int], duration: float, log) -> dict:
    gen = OruGenerator(patients=2000, run=uuid.uuid4().hex[:6])
    next_n = 0

    def batch(count: int, name: str) -> Path:
        nonlocal next_n
        _raws, lines = push_lines(gen, next_n, count)
        next_n += count
        path = work / f"lis-{name}.jsonl"
        path.write_text("\n".join(lines) + "\n")
        return path

    sample, _ = push_lines(OruGenerator(patients=200, run="p"), 0, 500)
    parse = parse_only(sample)
    segments = [raw.count(b"\r") for raw in sample]
    log(f"LIS parse-only: {parse['rate']:.0f} msg/s ({min(segments)}–{max(segments)} segments per message)")

    warm = fixed_point(fn.port, batch(200, "warmup"), max(concurrencies))
    rate = max(50.0, warm["ok"] / warm["duration_s"])
    points = {}
    for c in concurrencies:
        count = int(min(20000, max(500, rate * duration)))
        with MemorySampler(fn) as mem:
            result = fixed_point(fn.port, batch(count, f"c{c}"), c)
        result["peak_memory"] = mem.peak
        result["messages"] = count
        result["ok_rate"] = round(result["ok"] / result["duration_s"], 1)
        points[str(c)] = result
        rate = max(rate, result["ok_rate"])
        log(f"LIS e2e c={c}: {result['ok_rate']:.0f} ORU/s ({count} messages, statuses {result['statuses']})")
    return {
        "parse_only": parse,
        "segments_per_message": [min(segments), max(segments)],
        "patients": len(gen.patients),
        "points": points,
        "stored_statuses": _statuses(url, gen.run),
        "sent": next_n,
    }
