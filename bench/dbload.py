"""The database's ceiling: raw pg8000, no ORM, no HTTP.

``insert``: one row per transaction (INSERT + COMMIT) into ``bench_raw_insert``;
``select``: a primary-key SELECT of a patient (autocommit, one round trip).
Same shape as the HTTP generators: up to two processes, one thread and one connection per unit of
concurrency, one ``BENCH_JSON`` line with the rate and latency percentiles.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import random
import sys
import threading
import time
import uuid

RAW_TABLE_DDL = (
    "CREATE TABLE IF NOT EXISTS bench_raw_insert (id uuid PRIMARY KEY, family text NOT NULL, given text[] NOT NULL, "
    "birth_date date, payload jsonb, created_at timestamptz NOT NULL DEFAULT now())"
)


def connect(url: str):
    import pg8000.dbapi  # noqa: PLC0415
    from sqlalchemy.engine import make_url  # noqa: PLC0415

    u = make_url(url)
    kwargs = {"user": u.username or "postgres", "password": u.password, "database": u.database}
    if "unix_sock" in u.query:
        kwargs["unix_sock"] = u.query["unix_sock"]
    else:
        kwargs.update(host=u.host or "127.0.0.1", port=u.port or 5432)
    return pg8000.dbapi.connect(**kwargs)


def _worker(args: argparse.Namespace, ids: list[str], start: float, out: list, lock: threading.Lock) -> None:
    conn = connect(args.url)
    rng = random.Random()
    cur = conn.cursor()
    if args.mode == "select":
        conn.autocommit = True
    latencies: list[float] = []
    while time.monotonic() < start:
        time.sleep(0.001)
    deadline = start + args.duration
    while time.monotonic() < deadline:
        t0 = time.perf_counter()
        if args.mode == "insert":
            cur.execute("INSERT INTO bench_raw_insert (id, family, given, birth_date, payload) VALUES (%s, %s, %s, %s, %s)",
                        (uuid.uuid4(), "Benchraw", ["Maria"], "1970-01-01", '{"phone": "+14155550100"}'))
            conn.commit()
        else:
            cur.execute("SELECT * FROM patients WHERE id = %s", (rng.choice(ids),))
            cur.fetchall()
        latencies.append(time.perf_counter() - t0)
    conn.close()
    with lock:
        out.append(latencies)


def _process(args: argparse.Namespace, threads: int, ids: list[str], start: float, queue) -> None:
    out: list = []
    lock = threading.Lock()
    workers = [threading.Thread(target=_worker, args=(args, ids, start, out, lock)) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    queue.put(out)


def run(args: argparse.Namespace) -> dict:
    ids = open(args.ids).read().split() if args.ids else []
    procs_n = max(1, min(args.concurrency, args.processes))
    per = [args.concurrency // procs_n + (1 if i < args.concurrency % procs_n else 0) for i in range(procs_n)]
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    start = time.monotonic() + 1.0  # every connection is open before the clock starts
    procs = [ctx.Process(target=_process, args=(args, n, ids, start, queue)) for n in per]
    for p in procs:
        p.start()
    latencies = sorted(x for _ in procs for lst in queue.get() for x in lst)
    for p in procs:
        p.join()
    n = len(latencies)

    def pct(p: float) -> float:
        return latencies[min(n - 1, max(0, round(p / 100 * n) - 1))] * 1000 if n else 0.0

    return {"requests": n, "duration_s": args.duration, "p50_ms": pct(50), "p95_ms": pct(95), "p99_ms": pct(99),
            "max_ms": latencies[-1] * 1000 if n else 0.0, "mean_ms": sum(latencies) / n * 1000 if n else 0.0,
            "errors": {"connect": 0, "read": 0, "write": 0, "status": 0, "timeout": 0}, "statuses": {"200": n}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--mode", choices=["insert", "select"], required=True)
    parser.add_argument("--concurrency", type=int, required=True)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--ids", help="file of patient ids (select)")
    parser.add_argument("--processes", type=int, default=2, help="client processes (one per core, like wrk -t 2)")
    args = parser.parse_args(argv)
    sys.stdout.write("BENCH_JSON " + json.dumps(run(args)) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
