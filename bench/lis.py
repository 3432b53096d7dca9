"""LIS throughput: ORU^R01 push bodies (8 OBX each: the message issue 15's goal is stated for) through the lis_consumer process over HTTP, end to end (parse,
match the patient, store message, orders and results), beside the parse-only rate of the parser the
consumer uses (``shared.hl7.parse_message``, in this process, one thread)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import sqlalchemy as sa

from bench.load import fixed_point
from bench.oru import EIGHT_OBX_PANEL, messages, obx_count, push_lines
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


def _statuses(url: str, namespaces: list[str]) -> dict[str, int] | str:
    """Stored status of every message the run sent (their control ids start with a batch namespace)."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text(
                "SELECT status, count(*) FROM lis_messages WHERE left(control_id, 7) = ANY(CAST(:p AS text[])) GROUP BY status"),
                {"p": namespaces}).all()
        return {status: n for status, n in rows}
    except sa.exc.SQLAlchemyError as exc:
        return f"not verified ({type(exc).__name__})"
    finally:
        engine.dispose()


def analyze(url: str) -> None:
    """``ANALYZE``, as autovacuum would have after the first pass (its tables grew from empty by
    hundreds of rows: past ``autovacuum_analyze_threshold`` + 10 %, which production's autovacuum
    acts on within its naptime). The bench's server runs with autovacuum off, and the seed analyzed
    the LIS tables empty: every plan PostgreSQL keeps on the consumer's connections — its prepared
    statements' generic plans and the foreign-key checks' plans — was then made for empty tables (a
    scan of the whole table) and kept as they grew, until nothing but an ANALYZE of the table
    invalidates it (2–6 ms of PostgreSQL's CPU per ORU and rising: docs/performance.md, "LIS:
    PostgreSQL's side of an ORU")."""
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("ANALYZE"))
    finally:
        engine.dispose()


# Patients the measured results are for. A first pass sends one result per patient (not measured: it
# creates them, and calibrates the rate); the measured points are results for known patients, as a
# lab's results mostly are. The new-patient path is measured on its own by bench.anatomy.
PATIENTS = 500


def run(fn: Fn, url: str, work: Path, concurrencies: list[int], duration: float, log) -> dict:
    """Make the patients known, then send about ``duration`` seconds' worth of messages per point."""
    batches = [0]
    pool = f"L{uuid.uuid4().hex[:6].upper()}"

    def batch(count: int, first_pass: bool = False) -> Path:
        namespace = f"B{uuid.uuid4().hex[:6].upper()}"
        raws = messages(count, namespace, patients=PATIENTS, panel=EIGHT_OBX_PANEL, pool=pool,
                        each_patient_once=first_pass)
        path = work / f"lis-{batches[0]}.jsonl"
        batches[0] += 1
        path.write_text("\n".join(push_lines(raws, namespace)) + "\n")
        tags.append(namespace)
        return path

    tags: list[str] = []
    sample = messages(500, "PARSE", patients=200, panel=EIGHT_OBX_PANEL)
    parse = parse_only(sample)
    segments = [raw.count(b"\r") for raw in sample]
    obx = sorted({obx_count(raw) for raw in sample})
    log(f"LIS parse-only: {parse['rate']:.0f} msg/s ({min(segments)}–{max(segments)} segments per message)")

    warm = fixed_point(fn.port, batch(PATIENTS, first_pass=True), max(concurrencies))
    rate = max(50.0, warm["ok"] / warm["duration_s"])
    analyze(url)
    log(f"LIS first pass: {PATIENTS} patients made known at {rate:.0f} ORU/s (statuses {warm['statuses']})")
    points = {}
    sent = PATIENTS
    for c in concurrencies:
        count = int(min(20000, max(500, rate * duration)))
        with MemorySampler(fn) as mem:
            result = fixed_point(fn.port, batch(count), c)
        sent += count
        result["peak_memory"] = mem.peak
        result["messages"] = count
        result["ok_rate"] = round(result["ok"] / result["duration_s"], 1)
        points[str(c)] = result
        rate = max(rate, result["ok_rate"])
        log(f"LIS e2e c={c}: {result['ok_rate']:.0f} ORU/s ({count} messages, statuses {result['statuses']})")
    return {
        "parse_only": parse,
        "segments_per_message": [min(segments), max(segments)],
        "obx_per_message": obx,
        "patients": PATIENTS,
        "known_patients": True,
        "points": points,
        "stored_statuses": _statuses(url, tags),
        "sent": sent,
    }
