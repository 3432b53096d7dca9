"""`make bench` / `python -m bench`: measure, compare with the ceilings measured in the same run,
print the table, write bench/results.json.

Order of a run: a dedicated database (migrated, seeded to ≥ 100,000 patients), the api and a
hello-world function with the production gunicorn settings, then for each concurrency hello-world,
GET by id, search, POST, raw pg8000 SELECT and INSERT+COMMIT back to back (so each figure and its
ceiling see the same machine state); then the LIS stream; then cold starts. The bench database is
dropped at the end (``--keep-db`` keeps it).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

import sqlalchemy as sa

from bench import coldstart, export, lis, mllp, notify, seed, sink as event_sink
from bench.load import anatomy, db_point, ensure_wrk, http_point
from bench.machine import describe
from bench.procs import HELLO, ROOT, Fn, MemorySampler, compile_project, launch, launch_sink, production_env, wait_until
from bench.report import render, targets

RESULTS = ROOT / "bench" / "results.json"
# The last run's block for docs/performance.md (goals as a Markdown table, then the full text tables):
# pasted by `python -m bench.docs`, or by hand.
TABLE_MD = ROOT / "bench" / ".results" / "table.md"


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--duration", type=float, default=8.0, help="seconds per load point")
    p.add_argument("--patients", type=int, default=100_000)
    p.add_argument("--sample", type=int, default=1000, help="patients registered through the api before cloning")
    p.add_argument("--concurrency", default="1,16,64")
    p.add_argument("--lis-concurrency", default="4,8")
    p.add_argument("--cold-runs", type=int, default=5)
    p.add_argument("--mllp-connections", default="1,8")
    p.add_argument("--notify-events", type=int, default=600, help="patient.registered events sent to notify")
    p.add_argument("--only", default="api,export,lis,notify,mllp,cold", help="sections to run")
    p.add_argument("--keep-db", action="store_true")
    p.add_argument("--quick", action="store_true", help="smoke run: 2 s points, 5,000 patients, 2 cold starts")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    if args.quick:
        args.duration, args.patients, args.sample, args.cold_runs = 2.0, 5000, 200, 2
    return args


def create_token(url: str, scopes: list[str]) -> str:
    from sqlalchemy.orm import Session  # noqa: PLC0415

    from shared.auth import create_api_key  # noqa: PLC0415
    from shared.db import UnitOfWork  # noqa: PLC0415

    engine = sa.create_engine(url)
    with Session(engine) as session:
        _key, token = create_api_key(UnitOfWork(session), f"bench-{time.time_ns()}", scopes)
        session.commit()
    engine.dispose()
    return token


def _ready(fn: Fn) -> bool:
    from bench.client import request  # noqa: PLC0415

    return request(fn.port, "GET", "/readyz", timeout=10)[0] == 200


def run_api(results: dict, url: str, api: Fn, hello: Fn, token: str, wrk: str | None, work: Path,
            args: argparse.Namespace, log) -> None:
    t = time.perf_counter()
    created = seed.seed_sample(api.port, token, args.sample)
    log(f"seed: {created} patients registered through POST /patients in {time.perf_counter() - t:.1f} s")
    stats = seed.clone(url, args.patients)
    log(f"seed: cloned to {stats['patients']} patients in {stats['seconds']} s")
    results["dataset"] = {"sample_via_api": created, **stats}
    ids = work / "ids.txt"
    ids.write_text("\n".join(seed.sample_ids(url, 20000)) + "\n")
    queries = work / "queries.txt"
    queries.write_text("\n".join(seed.search_queries(url, 2000)) + "\n")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        from bench.dbload import RAW_TABLE_DDL  # noqa: PLC0415

        conn.execute(sa.text(RAW_TABLE_DDL))
    engine.dispose()

    for mode, port, items in (("hello", hello.port, None), ("get", api.port, ids), ("search", api.port, queries),
                              ("create", api.port, None)):
        http_point(wrk, port, mode, 16, 2.0, token=token, items=items)  # warm-up, not recorded
    api_points: dict[str, dict] = {}
    with MemorySampler(api) as mem:
        for c in [int(x) for x in args.concurrency.split(",")]:
            points = {
                "hello": http_point(wrk, hello.port, "hello", c, args.duration),
                "get": http_point(wrk, api.port, "get", c, args.duration, token=token, items=ids),
                "search": http_point(wrk, api.port, "search", c, args.duration, token=token, items=queries),
                "create": http_point(wrk, api.port, "create", c, args.duration, token=token),
                "raw_select": db_point(url, "select", c, args.duration, ids),
                "raw_insert": db_point(url, "insert", c, args.duration),
            }
            api_points[str(c)] = points
            log(f"api c={c}: " + ", ".join(f"{k} {v['ok_rps']:.0f}/s p99 {v['p99_ms']:.1f}ms" for k, v in points.items()))
    results["api"] = api_points
    results.setdefault("peak_memory", {})["api"] = mem.peak
    results.setdefault("anatomy", {})["api"] = anatomy(url, "api", token=token, ids=ids, queries=queries)


def run_export(results: dict, url: str, api: Fn, env: dict[str, str], token: str, work: Path,
               args: argparse.Namespace, log) -> None:
    """Every patient (seeded to --patients when the api section did not) with their results, exported
    by the jobs function with its production settings and downloaded through the api."""
    if not seed.sample_ids(url, 1):
        seed.seed_sample(api.port, token, args.sample)
    stats = seed.clone(url, args.patients)
    if stats["cloned"]:
        log(f"export: cloned to {stats['patients']} patients in {stats['seconds']} s")
    jobs = launch("jobs", {**production_env("jobs"), **env}, work / "logs")
    try:
        wait_until(jobs, _ready, timeout=60)
        results["export"] = export.run(url, api, jobs, token, log)
        results.setdefault("peak_memory", {})["jobs"] = results["export"]["jobs_peak"]
    finally:
        jobs.stop()


def run_lis(results: dict, url: str, env: dict[str, str], work: Path, args: argparse.Namespace, log) -> None:
    fn = launch("lis_consumer", {**production_env("lis_consumer"), **env}, work / "logs")
    try:
        wait_until(fn, lambda f: _port_open(f.port), timeout=60)
        results["lis"] = lis.run(fn, url, work, [int(x) for x in args.lis_concurrency.split(",")], args.duration, log)
        results.setdefault("anatomy", {})["lis_consumer"] = anatomy(url, "lis_consumer")
        peaks = [p["peak_memory"] for p in results["lis"]["points"].values()]
        results.setdefault("peak_memory", {})["lis_consumer"] = {k: max(p[k] for p in peaks) for k in ("rss_mb", "pss_mb")}
    finally:
        fn.stop()


def run_notify(results: dict, url: str, env: dict[str, str], work: Path, args: argparse.Namespace, log) -> None:
    fn = launch("notify", {**production_env("notify"), **env}, work / "logs")
    try:
        wait_until(fn, lambda f: _port_open(f.port), timeout=60)
        ids = seed.sample_ids(url, args.notify_events)
        results["notify"] = notify.run(fn, ids, work, 4, log)
        results.setdefault("peak_memory", {})["notify"] = results["notify"]["peak_memory"]
    finally:
        fn.stop()


def run_mllp(results: dict, work: Path, args: argparse.Namespace, log) -> None:
    results["mllp"] = mllp.run(work, [int(x) for x in args.mllp_connections.split(",")], args.duration, log)


def _port_open(port: int) -> bool:
    import socket  # noqa: PLC0415

    with socket.create_connection(("127.0.0.1", port), timeout=0.5):
        return True


def run_cold(results: dict, env: dict[str, str], token: str, patient_id: str, welcome_id: str, work: Path,
             args: argparse.Namespace, log) -> None:
    probes = {
        HELLO: coldstart.hello_probe,
        "api": coldstart.api_probe(token, patient_id),
        "lis_consumer": coldstart.lis_probe(f"C{time.time_ns() % 10**5:05d}"),
        "notify": coldstart.welcome_probe(welcome_id),
        "jobs": coldstart.tick_probe(),
    }
    results["cold_start"] = coldstart.measure(probes, env, work / "logs", args.cold_runs, log)


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    started = time.perf_counter()

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - started:6.1f}s] {message}", file=sys.stderr, flush=True)

    from shared.migrate import migrate  # noqa: PLC0415
    from tests.support.database import admin_url, create_database, drop_database  # noqa: PLC0415

    work = ROOT / "bench" / ".work" / datetime.now().strftime("%Y%m%d-%H%M%S")
    work.mkdir(parents=True, exist_ok=True)
    wrk = ensure_wrk(log)
    compile_project()
    admin = admin_url()
    url = create_database(admin, prefix="pmbench")
    results: dict = {"started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                     "config": {k: str(v) for k, v in vars(args).items()}, "errors": {}}
    procs: list[Fn] = []
    sections = set(args.only.split(","))
    try:
        engine = sa.create_engine(url)
        migrate(engine)
        engine.dispose()
        results["machine"] = describe(url, wrk)
        token = create_token(url, ["patients:read", "patients:write"])
        env = {"DATABASE_URL": url, "DATA_DIR": str(work / "data")}
        sink = launch_sink(work / "logs")
        hello = launch(HELLO, production_env(HELLO), work / "logs")
        procs += [sink, hello]
        # The api publishes its outbox events right after each commit, as in production (K_SINK);
        # the sink (bench.sink) stands in for the broker, which runs on other nodes: it answers each
        # event for a few tens of microseconds, so only the functions' side of publishing is measured.
        api = launch("api", {**production_env("api"), **env, "K_SINK": sink.url}, work / "logs")
        procs.append(api)
        for fn in (sink, hello):
            wait_until(fn, coldstart.hello_probe)
        wait_until(api, _ready)
        results["processes"] = {"api": production_env("api"), "hello": production_env(HELLO)}
        log(f"bench database ready; load generator: {wrk or 'bench.loadgen'}")
        if "api" in sections:
            _section(results, "api", log, run_api, results, url, api, hello, token, wrk, work, args, log)
        if "export" in sections:
            _section(results, "export", log, run_export, results, url, api, {**env, "K_SINK": sink.url}, token, work,
                     args, log)
        patient_id = seed.sample_ids(url, 1)
        if not patient_id:  # the api section did not run: the api cold-start probe reads this patient
            seed.seed_sample(api.port, token, 1)
            patient_id = seed.sample_ids(url, 1)
        welcome_id = seed.register_welcome_patient(api.port, token) if "cold" in sections else ""
        env["K_SINK"] = sink.url
        if "lis" in sections:
            _section(results, "lis", log, run_lis, results, url, env, work, args, log)
        if "notify" in sections:
            _section(results, "notify", log, run_notify, results, url, env, work, args, log)
        if "mllp" in sections:
            _section(results, "mllp", log, run_mllp, results, work, args, log)
        results["sink"] = event_sink.counts(sink.port)
        log(f"event sink: {results['sink']['accepted']} events accepted, {results['sink']['refused']} refused")
        for fn in (api, hello):
            fn.stop()
        if "cold" in sections and patient_id:
            _section(results, "cold_start", log, run_cold, results, env, token, patient_id[0], welcome_id, work, args, log)
        results["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    finally:
        for fn in procs:
            fn.stop()
        if not args.keep_db:
            drop_database(admin, url)
    results["targets"] = targets(results)
    results["elapsed_s"] = round(time.perf_counter() - started, 1)
    args.out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    table = render(results)
    (work / "table.txt").write_text(table + "\n")
    from bench.docs import block  # noqa: PLC0415

    TABLE_MD.parent.mkdir(parents=True, exist_ok=True)
    TABLE_MD.write_text(block(results) + "\n")
    print(table)
    print(f"\n{args.out} and {TABLE_MD} written; {results['elapsed_s']:.0f} s; logs under {work}")
    if results["errors"]:
        print(f"sections that failed: {results['errors']}", file=sys.stderr)
        return 1
    return 0


def _section(results: dict, name: str, log, func, *args) -> None:
    """Run one section; a failure is recorded (and fails the run) without losing the others."""
    try:
        func(*args)
    except Exception as exc:  # noqa: BLE001 — report and carry on with the other sections
        log(f"section {name} failed: {type(exc).__name__}: {exc}")
        results["errors"][name] = "".join(traceback.format_exception_only(type(exc), exc)).strip()[:2000]
