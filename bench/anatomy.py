"""Where a request's time goes: the same requests as the load points, one at a time, through the real
function (functions-framework's app, in this process, no HTTP server), measuring wall time, CPU time
of this process (the part the GIL serialises: one gunicorn worker cannot do more than 1 s of it per
second) and the number of SQL statements sent.

Run as ``python -m bench.anatomy --url … --token … --ids … --queries …`` (a process of its own, so
the runner's process never holds the app's engine); prints one ``BENCH_JSON`` line.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _measure(call, n: int, counter: dict[str, int]) -> dict[str, float]:
    for _ in range(max(3, n // 10)):  # warm caches (compiled statements, key cache)
        call()
    counter["n"] = 0
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(n):
        call()
    return {"wall_ms": round((time.perf_counter() - wall) / n * 1000, 2),
            "cpu_ms": round((time.process_time() - cpu) / n * 1000, 2),
            "statements": round(counter["n"] / n, 1)}


def _counting(counter: dict[str, int]) -> None:
    from sqlalchemy import event  # noqa: PLC0415

    from shared.db import get_engine  # noqa: PLC0415

    @event.listens_for(get_engine(), "before_cursor_execute")
    def _count(*_args: object) -> None:
        counter["n"] += 1


def api(args: argparse.Namespace) -> dict:
    from functions_framework import create_app  # noqa: PLC0415

    from bench.loadgen import _create_body  # noqa: PLC0415

    app = create_app(target="api", source=str(ROOT / "functions" / "api" / "main.py"), signature_type="http")
    client = app.test_client()
    headers = {"Authorization": f"Bearer {args.token}"}
    ids = Path(args.ids).read_text().split()
    queries = Path(args.queries).read_text().split()
    rng = random.Random(1)
    counter = {"n": 0}
    client.get("/readyz")
    _counting(counter)
    nonce = uuid.uuid4().hex[:8]
    seq = iter(range(10**9))

    def check(resp, status: int) -> None:
        if resp.status_code != status:
            raise RuntimeError(f"anatomy: {resp.status_code} {resp.get_data(as_text=True)[:200]}")

    return {
        "get": _measure(lambda: check(client.get(f"/patients/{rng.choice(ids)}", headers=headers), 200), args.n, counter),
        "search": _measure(lambda: check(client.get(f"/patients?{rng.choice(queries)}", headers=headers), 200), args.n, counter),
        "create": _measure(lambda: check(client.post("/patients", data=_create_body(rng, nonce, next(seq)), headers={
            **headers, "Content-Type": "application/json"}), 201), args.n, counter),
    }


def lis(args: argparse.Namespace) -> dict:
    from functions_framework import create_app  # noqa: PLC0415

    from bench.oru import messages, push_lines  # noqa: PLC0415

    app = create_app(target="lis_consumer", source=str(ROOT / "functions" / "lis_consumer" / "main.py"),
                     signature_type="cloudevent")
    client = app.test_client()
    namespace = f"A{uuid.uuid4().hex[:6].upper()}"
    bodies = iter(push_lines(messages(args.n + args.n // 10 + 3, namespace), namespace))
    counter = {"n": 0}
    _counting(counter)

    def push() -> None:
        resp = client.post("/", data=next(bodies), headers={"Content-Type": "application/json"})
        if resp.status_code != 200:
            raise RuntimeError(f"anatomy: lis {resp.status_code}")

    return {"ingest": _measure(push, args.n, counter)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--url", required=True)
    p.add_argument("--function", choices=["api", "lis_consumer"], required=True)
    p.add_argument("--token")
    p.add_argument("--ids")
    p.add_argument("--queries")
    p.add_argument("-n", type=int, default=200)
    args = p.parse_args(argv)
    os.environ.update({"DATABASE_URL": args.url, "LOG_LEVEL": "INFO", "API_KEY_CACHE_SECONDS": "5",
                       "THREADS": "8", "NO_GCE_CHECK": "true"})
    sys.path.insert(0, str(ROOT))
    result = api(args) if args.function == "api" else lis(args)
    sys.stdout.write("BENCH_JSON " + json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
