"""Where a request's time goes: the same requests as the load points, one at a time, through the real
function (functions-framework's app, in this process, no HTTP server), measuring wall time, CPU time
of this process (the part the GIL serialises: one gunicorn worker cannot do more than 1 s of it per
second), the SQL statements sent and the round trips to PostgreSQL — beside the budget the issue's
goals imply (`budgets`).

Statements and round trips are counted in what pg8000's connections write (``_patch_pg8000``), so
they are counted the same whether a path goes through SQLAlchemy, pg8000's own methods or the
messages ``shared.db.wire`` composes; they are counted over calls of their own, and the CPU is timed
with the counting paused. A *statement* is what the code
asked for (BEGIN/COMMIT/ROLLBACK/SAVEPOINT not counted; each statement of a multi-statement simple
query counted); a *round trip* is every wait for the server's
answer, transaction control included (pg8000 sends an unnamed statement in three of them: parse,
describe + bind, execute; a prepared one in one).

Run by the bench as ``python -m bench.anatomy --url … --function api --token … --ids … --queries …``
(a process of its own, so the runner's process never holds the app's engine); prints one ``BENCH_JSON``
line. ``python -m bench.anatomy --standalone`` does everything itself — a database, a small data set, the
hello-world and raw INSERT+COMMIT rates the budgets derive from (a few seconds each) — and prints the
table: the quick check while changing a hot path.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import random
import re
import sys
import time
import uuid
import weakref
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

# Statements per request the issue allows (GET once the API key is cached).
STATEMENT_BUDGET = {"get": 1, "search": 1, "create": 3, "ingest": 6}
# Each path's goal as a share of a same-run ceiling: hello-world for GET (50 %), search (25 %) and the
# 8-OBX ORU (12.5 %, and at least 250/s: the issue states both); raw pg8000 INSERT+COMMIT for POST (20 %).
RATE_GOAL = {"get": ("hello", 0.5), "search": ("hello", 0.25), "create": ("raw_insert", 0.2), "ingest": ("hello", 0.125)}
ORU_MIN_RATE = 250.0
LABELS = {"hello": "hello-world (framework)", "get": "GET /patients/{id}", "search": "GET /patients?name=…",
          "create": "POST /patients", "ingest": "ORU^R01 8 OBX, known patient",
          "ingest_new": "ORU^R01 8 OBX, new patient"}
_TX_CONTROL = re.compile(r"\s*(begin|start\s+transaction|commit|rollback|savepoint|release|end)\b", re.IGNORECASE)


def is_transaction_control(sql: str) -> bool:
    return bool(_TX_CONTROL.match(sql))


def split_sql(sql: str) -> list[str]:
    """The statements of a simple-protocol query string (``BEGIN; SELECT …; SELECT …``): split at the
    semicolons outside quotes ('…', "…", $tag$…$tag$); empty parts dropped."""
    parts, start, i, n = [], 0, 0, len(sql)
    while i < n:
        ch = sql[i]
        if ch in "'\"":
            end = sql.find(ch, i + 1)
            i = n if end < 0 else end + 1
            continue
        if ch == "$":
            m = re.match(r"\$[A-Za-z_]*\$", sql[i:])
            if m:
                end = sql.find(m.group(0), i + len(m.group(0)))
                i = n if end < 0 else end + len(m.group(0))
                continue
        if ch == ";":
            parts.append(sql[start:i])
            start = i + 1
        i += 1
    parts.append(sql[start:])
    return [p.strip() for p in parts if p.strip()]


@functools.lru_cache(maxsize=1024)
def statements_in(sql: str) -> int:
    """How many statements, transaction control apart, a query string carries (kept per text: the
    count is the measurement's, and splitting a LIS message's final statement character by character
    on every execution billed ~8 % of the ORU's CPU to the request being measured)."""
    return sum(1 for part in split_sql(sql) if not is_transaction_control(part))


def budgets(hello_rps: float, raw_insert_rps: float | None) -> dict[str, dict[str, float]]:
    """CPU milliseconds per request each path may spend beyond the framework's own, and statements.

    One gunicorn worker (WORKERS=1) runs Python on one core at a time: under saturating load its
    throughput is 1 / (CPU seconds per request). Hello-world is pure framework (gunicorn, Flask,
    functions-framework), so its rate measured in the same run gives the framework's CPU per request,
    ``framework = 1 / hello_rps``. A path whose goal is ``rate = share × ceiling`` may therefore spend
    ``1 / rate`` of CPU per request in all, of which the framework takes ``framework``; what is left
    is the path's own budget::

        own = 1 / (share × ceiling) − 1 / hello_rps

    GET at 50 % of a 2,000/s hello-world: 1/1000 − 1/2000 = 0.5 ms (the issue's figure). Search at 25 %:
    1.5 ms. ORU at 12.5 % of hello-world or 250/s, whichever is faster: 3.5 ms at 2,000/s. POST at 20 % of
    raw INSERT+COMMIT: at 4,244/s, 1/849 − 1/2000 = 0.68 ms. The measured side is the same difference:
    a path's in-process CPU minus hello-world's in-process CPU (both through the same Flask app code,
    no gunicorn). A budget ≤ 0 means the goal is beyond one worker whatever the path does."""
    out: dict[str, dict[str, float]] = {}
    if not hello_rps:
        return out
    framework_ms = 1000.0 / hello_rps
    ceilings = {"hello": hello_rps, "raw_insert": raw_insert_rps}
    for kind, (ceiling, share) in RATE_GOAL.items():
        base = ceilings.get(ceiling)
        if not base:
            continue
        rate = share * base
        if kind == "ingest":
            rate = max(rate, ORU_MIN_RATE)
        out[kind] = {"goal_rps": round(rate, 1), "cpu_ms": round(1000.0 / rate - framework_ms, 3),
                     "statements": STATEMENT_BUDGET[kind]}
    return out


def _warm_calls(n: int) -> int:
    return max(3, n // 10)


def _measure(call, n: int, counter: dict[str, int]) -> dict[str, float]:
    """``call`` measured: warmed first (compiled statements, the key cache, prepared statements), then
    its statements and round trips counted over as many calls again, then ``n`` calls timed with the
    counting paused (what counting costs is the measurement's, not the request's). ``2 × _warm_calls(n)
    + n`` calls in all."""
    warm = _warm_calls(n)
    for _ in range(warm):
        call()
    counter["statements"] = counter["round_trips"] = 0
    for _ in range(warm):
        call()
    counted = dict(counter)
    paused = _ACTIVE[:]
    _ACTIVE.clear()
    try:
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(n):
            call()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    finally:
        _ACTIVE[:] = paused
    return {"wall_ms": round(wall / n * 1000, 3),
            "cpu_ms": round(cpu / n * 1000, 3),
            "statements": round(counted["statements"] / warm, 2),
            "round_trips": round(counted["round_trips"] / warm, 2)}


_ACTIVE: list[dict[str, int]] = []  # the counter being counted into (none: the wrappers only pass through)


def count_statements(counter: dict[str, int]) -> None:
    """From now on count into ``counter``, from what pg8000's connections write: every statement sent
    (transaction control apart) as ``statements``, every wait for the server's answer as
    ``round_trips``. pg8000 is patched once per process; a later call only changes the counter."""
    _patch_pg8000()
    _ACTIVE[:] = [counter]


def stop_counting() -> None:
    _ACTIVE.clear()


# Per connection's file (forgotten with it): its prepared statements' texts by name, from the Parses that
# prepared them, and under b"" the text of its last unnamed Parse (whose Bind may come in a later write).
_PARSED: weakref.WeakKeyDictionary[Any, dict[bytes, str]] = weakref.WeakKeyDictionary()


def _patch_pg8000() -> None:
    """Count in the byte stream: ``pg8000.core._write`` carries every message a connection sends, pg8000's
    own (``execute_simple``, ``execute_unnamed``, ``execute_named``, a prepare) and those
    ``shared.db.wire`` composes itself, and ``pg8000.core._flush`` every wait for an answer (pg8000
    flushes only then; ``shared.db.wire`` too, once per exchange)."""
    import pg8000.core as core  # noqa: PLC0415

    if getattr(core, "_bench_counting", False):
        return
    write, flush = core._write, core._flush

    def written(sock, data):
        if _ACTIVE:
            _ACTIVE[0]["statements"] += _statements_written(_PARSED.setdefault(sock, {}), bytes(data))
        return write(sock, data)

    def flushed(sock):
        if _ACTIVE:
            _ACTIVE[0]["round_trips"] += 1
        return flush(sock)

    core._write, core._flush = written, flushed
    core._bench_counting = True


def _statements_written(parsed: dict[bytes, str], data: bytes) -> int:
    """The statements the frontend messages in ``data`` run: a simple Query by its text (several
    statements in one string each count), a Bind by the text of the statement it binds — a prepared
    one's from the Parse that named it (1 when that Parse was not seen), the unnamed one's from its
    last Parse. A Parse, Describe, Execute or Sync runs nothing of its own; a write that is not a
    sequence of messages (the startup packet, an SSL request) counts nothing. ``parsed`` is the
    connection's texts by statement name (b"": the unnamed one), kept up to date here."""
    count, i, n = 0, 0, len(data)
    while i + 5 <= n:
        code, length = data[i:i + 1], int.from_bytes(data[i + 1:i + 5], "big")
        body = data[i + 5:i + 1 + length]
        if length < 4 or not code.isalpha() or len(body) != length - 4:
            break
        if code == b"Q":
            count += statements_in(body[:-1].decode())
        elif code == b"P":
            name, _, rest = body.partition(b"\x00")
            parsed[name] = rest[:rest.index(b"\x00")].decode()
        elif code == b"B":
            _portal, _, rest = body.partition(b"\x00")
            text = parsed.get(rest[:rest.index(b"\x00")])
            count += 1 if text is None else statements_in(text)
        i += 1 + length
    return count


def hello(n: int, counter: dict[str, int]) -> dict[str, float]:
    """The framework's own in-process CPU per request (bench/hello/main.py through the same test client)."""
    from functions_framework import create_app  # noqa: PLC0415

    client = create_app(target="hello", source=str(ROOT / "bench" / "hello" / "main.py"), signature_type="http").test_client()
    return _measure(lambda: client.get("/"), n, counter)


def api(args: argparse.Namespace, counter: dict[str, int]) -> dict:
    from functions_framework import create_app  # noqa: PLC0415

    from bench.loadgen import _create_body  # noqa: PLC0415

    app = create_app(target="api", source=str(ROOT / "functions" / "api" / "main.py"), signature_type="http")
    client = app.test_client()
    headers = {"Authorization": f"Bearer {args.token}"}
    ids = Path(args.ids).read_text().split()
    queries = Path(args.queries).read_text().split()
    rng = random.Random(1)
    client.get("/readyz")
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


def lis(args: argparse.Namespace, counter: dict[str, int]) -> dict:
    from functions_framework import create_app  # noqa: PLC0415

    from bench.oru import EIGHT_OBX_PANEL, messages, push_lines  # noqa: PLC0415

    app = create_app(target="lis_consumer", source=str(ROOT / "functions" / "lis_consumer" / "main.py"),
                     signature_type="cloudevent")
    client = app.test_client()
    count = args.n + 2 * _warm_calls(args.n)  # timed, counted and warm-up (_measure)
    pool = f"K{uuid.uuid4().hex[:6].upper()}"
    known_patients = 20

    def bodies(namespace: str, n: int, **kwargs) -> list[str]:
        return push_lines(messages(n, namespace, panel=EIGHT_OBX_PANEL, **kwargs), namespace)

    def pusher(lines: list[str]):
        it = iter(lines)

        def push() -> None:
            resp = client.post("/", data=next(it), headers={"Content-Type": "application/json"})
            if resp.status_code != 200:
                raise RuntimeError(f"anatomy: lis {resp.status_code}")

        return push

    # Known patients (the common case): one result each first, unmeasured, then results for them.
    first = pusher(bodies(f"F{pool[1:]}", known_patients, patients=known_patients, pool=pool, each_patient_once=True))
    for _ in range(known_patients):
        first()
    known = _measure(pusher(bodies(f"A{pool[1:]}", count, patients=known_patients, pool=pool)), args.n, counter)
    # A new patient with every message: the LIS creates each one (identifiers, name index, version,
    # duplicate check, events) before storing the results.
    new_pool = f"N{uuid.uuid4().hex[:6].upper()}"
    new = _measure(pusher(bodies(new_pool, count, patients=count, pool=new_pool, each_patient_once=True)), args.n,
                   counter)
    return {"ingest": known, "ingest_new": new}


def measure(args: argparse.Namespace) -> dict:
    os.environ.update({"DATABASE_URL": args.url, "LOG_LEVEL": "INFO", "API_KEY_CACHE_SECONDS": "5",
                       "THREADS": "8", "NO_GCE_CHECK": "true"})
    sys.path.insert(0, str(ROOT))
    counter = {"statements": 0, "round_trips": 0}
    count_statements(counter)
    result = {"hello": hello(max(args.n, 500), counter)}
    result.update(api(args, counter) if args.function == "api" else lis(args, counter))
    framework = result["hello"]["cpu_ms"]
    for kind, m in result.items():
        if kind != "hello":
            m["own_cpu_ms"] = round(m["cpu_ms"] - framework, 3)
    return result


def rows(measured: dict[str, dict], budget: dict[str, dict]) -> list[list[str]]:
    """Table rows: each request kind's CPU and statements beside its budget, with a verdict."""
    out = []
    for kind, m in measured.items():
        b = budget.get(kind)
        own = m.get("own_cpu_ms")
        cpu_ok = b is not None and own is not None and own <= b["cpu_ms"]
        st_ok = b is not None and m["statements"] <= b["statements"]
        out.append([
            LABELS.get(kind, kind), f"{m['wall_ms']:.2f}", f"{m['cpu_ms']:.2f}",
            f"{own:.2f}" if own is not None else "-",
            f"{b['cpu_ms']:.2f} (≥ {b['goal_rps']:.0f}/s)" if b else "-",
            f"{m['statements']:g}", f"{b['statements']}" if b else "-", f"{m.get('round_trips', 0):g}",
            "-" if not b else ("met" if cpu_ok and st_ok else "MISSED: " + ", ".join(
                x for x, bad in (("CPU", not cpu_ok), ("statements", not st_ok)) if bad)),
        ])
    return out


HEADERS = ["request", "wall ms", "CPU ms", "own CPU ms", "own CPU budget", "statements", "budget",
           "round trips", "verdict"]


def _standalone(args: argparse.Namespace) -> int:
    """A database, a small data set through the real api, the same-run ceilings, both functions measured."""
    from bench import seed  # noqa: PLC0415
    from bench.coldstart import hello_probe  # noqa: PLC0415
    from bench.dbload import RAW_TABLE_DDL  # noqa: PLC0415
    from bench.load import anatomy as run_anatomy  # noqa: PLC0415
    from bench.load import db_point, ensure_wrk, http_point  # noqa: PLC0415
    from bench.procs import HELLO, compile_project, launch, production_env, wait_until  # noqa: PLC0415
    from bench.report import _table  # noqa: PLC0415
    from bench.runner import _ready, create_token  # noqa: PLC0415
    from shared.migrate import migrate  # noqa: PLC0415
    from tests.support.database import admin_url, create_database, drop_database  # noqa: PLC0415

    import sqlalchemy as sa  # noqa: PLC0415

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    work = ROOT / "bench" / ".work" / ("anatomy-" + time.strftime("%Y%m%d-%H%M%S"))
    work.mkdir(parents=True, exist_ok=True)
    wrk = ensure_wrk(log)
    compile_project()
    admin = admin_url()
    url = create_database(admin, prefix="pmbench")
    procs = []
    try:
        engine = sa.create_engine(url)
        migrate(engine)
        with engine.begin() as conn:
            conn.execute(sa.text(RAW_TABLE_DDL))
        engine.dispose()
        token = create_token(url, ["patients:read", "patients:write"])
        hello_fn = launch(HELLO, production_env(HELLO), work / "logs")
        api_fn = launch("api", {**production_env("api"), "DATABASE_URL": url, "DATA_DIR": str(work / "data")},
                        work / "logs")
        procs += [hello_fn, api_fn]
        wait_until(hello_fn, hello_probe)
        wait_until(api_fn, _ready)
        seed.seed_sample(api_fn.port, token, args.patients)
        api_fn.stop()
        ids, queries = work / "ids.txt", work / "queries.txt"
        ids.write_text("\n".join(seed.sample_ids(url, args.patients)) + "\n")
        queries.write_text("\n".join(seed.search_queries(url, args.patients)) + "\n")
        http_point(wrk, hello_fn.port, "hello", 16, 1.0)  # warm-up
        hello_rps = http_point(wrk, hello_fn.port, "hello", 16, args.ceiling_seconds)["rps"]
        raw_rps = db_point(url, "insert", 16, args.ceiling_seconds)["rps"]
        hello_fn.stop()
        log(f"ceilings at c=16: hello-world {hello_rps:.0f}/s, raw pg8000 INSERT+COMMIT {raw_rps:.0f}/s")
        measured: dict[str, dict] = {}
        for function in ("api", "lis_consumer"):
            part = run_anatomy(url, function, token=token, ids=str(ids), queries=str(queries), n=str(args.n))
            measured.update({k: v for k, v in part.items() if k not in measured})  # hello-world once
        budget = budgets(hello_rps, raw_rps)
        print(f"hello-world {hello_rps:.0f}/s, raw INSERT+COMMIT {raw_rps:.0f}/s at c=16 (this run; the budgets "
              f"derive from them: bench/anatomy.py budgets())")
        print(_table(HEADERS, rows(measured, budget)))
        sys.stdout.write("BENCH_JSON " + json.dumps({"measured": measured, "budgets": budget,
                                                      "hello_rps": hello_rps, "raw_insert_rps": raw_rps}) + "\n")
    finally:
        for fn in procs:
            fn.stop()
        drop_database(admin, url)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--standalone", action="store_true", help="make a database and the ceilings, print the table")
    p.add_argument("--url")
    p.add_argument("--function", choices=["api", "lis_consumer"])
    p.add_argument("--token")
    p.add_argument("--ids")
    p.add_argument("--queries")
    p.add_argument("-n", "--n", type=int, default=200, help="requests measured per kind")
    p.add_argument("--patients", type=int, default=300, help="--standalone: patients registered through the api")
    p.add_argument("--ceiling-seconds", type=float, default=3.0, help="--standalone: seconds per ceiling point")
    args = p.parse_args(argv)
    if args.standalone:
        return _standalone(args)
    if not (args.url and args.function):
        p.error("--url and --function are required (or --standalone)")
    sys.stdout.write("BENCH_JSON " + json.dumps(measure(args)) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
