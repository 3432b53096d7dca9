"""A multi-process HTTP/1.1 keep-alive load generator (the fallback when wrk is missing, and the driver
of fixed workloads such as the LIS stream, where every body is sent exactly once).

Runs in its own processes (``python -m bench.loadgen …``), never in the process that measures: the
concurrency is split over up to two processes (this machine has two cores), each with one thread
and one persistent connection per unit of concurrency. Prints one ``BENCH_JSON`` line, the same
shape as the wrk script's.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import random
import sys
import threading
import time
import uuid

GIVEN = ["Maria", "James", "Wei", "Fatima", "Jose", "Anna", "Chidi", "Yuki", "Olga", "Priya"]


def _create_body(rng: random.Random, nonce: str, n: int) -> bytes:
    family = "Bench" + "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(10))
    return json.dumps({
        "name": {"family": family, "given": [rng.choice(GIVEN)]},
        "birth_date": f"{rng.randint(1930, 2020):04d}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        "sex": "female", "phone": f"+14{rng.randint(0, 999999999):09d}", "email": f"bench.{nonce}.{n}@example.org",
        "address": {"line": [f"{rng.randint(1, 9999)} Main St"], "city": "Springfield", "state": "OR",
                    "postal_code": "97403", "country": "US"},
        "identifiers": [{"system": "urn:bench:post", "value": f"P{nonce}-{n}"}],
    }).encode()


def _worker(args: argparse.Namespace, items: list[str], bodies: list[bytes] | None, start: float,
            out: list, lock: threading.Lock) -> None:
    rng = random.Random()
    conn = http.client.HTTPConnection("127.0.0.1", args.port, timeout=args.timeout)
    headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    errors = 0
    nonce = uuid.uuid4().hex[:8]
    n = 0
    while time.monotonic() < start:
        time.sleep(0.001)
    deadline = start + args.duration if bodies is None else float("inf")
    while time.monotonic() < deadline:
        body = None
        hdrs = headers
        if bodies is not None:
            with lock:
                if not bodies:
                    break
                body = bodies.pop()
            method, path, hdrs = "POST", args.path, {**headers, "Content-Type": args.content_type}
        elif args.mode == "get":
            method, path = "GET", "/patients/" + rng.choice(items)
        elif args.mode == "search":
            method, path = "GET", "/patients?" + rng.choice(items)
        elif args.mode == "create":
            n += 1
            method, path, body = "POST", "/patients", _create_body(rng, nonce, n)
            hdrs = {**headers, "Content-Type": "application/json"}
        else:
            method, path = "GET", "/"
        t0 = time.perf_counter()
        try:
            conn.request(method, path, body=body, headers=hdrs)
            resp = conn.getresponse()
            resp.read()
            statuses[resp.status] = statuses.get(resp.status, 0) + 1
            latencies.append(time.perf_counter() - t0)
        except (OSError, http.client.HTTPException):
            errors += 1
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", args.port, timeout=args.timeout)
    with lock:
        out.append((latencies, statuses, errors, time.monotonic()))


def _process(args: argparse.Namespace, threads: int, items: list[str], bodies: list[bytes] | None, start: float, queue) -> None:
    out: list = []
    lock = threading.Lock()
    workers = [threading.Thread(target=_worker, args=(args, items, bodies, start, out, lock)) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    queue.put(out)


def _percentile(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return 0.0
    k = min(len(sorted_values) - 1, max(0, round(p / 100 * len(sorted_values)) - 1))
    return sorted_values[k]


def run(args: argparse.Namespace) -> dict:
    items = open(args.items).read().split() if args.items else []
    all_bodies = [line.encode() for line in open(args.bodies).read().splitlines() if line] if args.bodies else None
    procs_n = max(1, min(args.concurrency, args.processes))
    per = [args.concurrency // procs_n + (1 if i < args.concurrency % procs_n else 0) for i in range(procs_n)]
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    start = time.monotonic() + 0.5
    procs = []
    for i, threads in enumerate(per):
        bodies = all_bodies[i::procs_n][::-1] if all_bodies is not None else None
        p = ctx.Process(target=_process, args=(args, threads, items, bodies, start, queue))
        p.start()
        procs.append(p)
    results = [r for _ in procs for r in queue.get()]
    for p in procs:
        p.join()
    latencies = sorted(x for r in results for x in r[0])
    statuses: dict[str, int] = {}
    for r in results:
        for code, n in r[1].items():
            statuses[str(code)] = statuses.get(str(code), 0) + n
    end = max(r[3] for r in results) if all_bodies is not None else start + args.duration
    duration = max(1e-9, end - start)
    ms = 1000.0
    return {
        "requests": len(latencies), "duration_s": round(duration, 3),
        "p50_ms": _percentile(latencies, 50) * ms, "p95_ms": _percentile(latencies, 95) * ms,
        "p99_ms": _percentile(latencies, 99) * ms, "max_ms": (latencies[-1] * ms) if latencies else 0.0,
        "mean_ms": (sum(latencies) / len(latencies) * ms) if latencies else 0.0,
        "errors": {"connect": sum(r[2] for r in results), "read": 0, "write": 0,
                   "status": sum(n for c, n in statuses.items() if not c.startswith("2")), "timeout": 0},
        "statuses": statuses,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--mode", choices=["hello", "get", "search", "create", "fixed"], required=True)
    parser.add_argument("--concurrency", type=int, required=True)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--items", help="file of ids / query strings (get, search)")
    parser.add_argument("--bodies", help="fixed mode: one JSON body per line, each POSTed once to --path")
    parser.add_argument("--path", default="/")
    parser.add_argument("--content-type", default="application/json", help="fixed mode: the bodies' Content-Type")
    parser.add_argument("--token")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=30.0)
    args = parser.parse_args(argv)
    if args.mode == "fixed" and not args.bodies:
        parser.error("--mode fixed needs --bodies")
    result = run(args)
    sys.stdout.write("BENCH_JSON " + json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
