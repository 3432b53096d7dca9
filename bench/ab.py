"""`python -m bench.ab`: versions of a function side by side — one database, one event sink, one machine
state — in alternated rounds: the A/B each round of issue 15 measured with scripts of its own.

A variant is a source tree, for instance a git worktree (``git worktree add /tmp/b <commit>``), started
as the bench starts a function (production settings, ``python -m shared.serve``) with that tree first on
its path::

    python -m bench.ab --path create --variant main=. --variant one-rt=/tmp/b --rounds 8

Every process gets the same warm-up, and each variant runs in several processes (``--replicas``,
launched in rotated order), a round's rate being their mean. A process can run faster or slower than its
twin for a whole run: the LIS's first-launched consumer ran about 25 % slower in every round, which once
passed for a 23 % gain (docs/performance.md, eighth round), and two consumers of the same tree with the
same warm-up still differed by 20 %. The rounds rotate the processes' order. Each records 2xx/s, the
process tree's CPU (user + system) per request and, for the api's paths, wrk's p99. The summary gives
each variant's medians and the geometric mean of its per-round rate ratios to the first variant: the
figure to read, since the machine's phase moves every process alike within a round. Run the same tree
as two variants first (an A/A) to see the spread a ratio must beat.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
import uuid
from datetime import datetime
from pathlib import Path

import psutil

from bench.lis import analyze
from bench.procs import ROOT, Fn, free_port, production_env, wait_until

API_PATHS = ("create", "get", "search")
PATHS = (*API_PATHS, "oru")
OUT = ROOT / "bench" / ".results"


def orders(labels: list[str], rounds: int) -> list[list[str]]:
    """The variants' order in each round: rotated by one each round, so every variant runs first,
    second, … equally often (with two, alternately first)."""
    return [labels[r % len(labels):] + labels[:r % len(labels)] for r in range(rounds)]


def summary(rates: dict[str, list[float]], cpu_ms: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    """Per variant: median rate, median CPU ms per request, and the geometric mean of its per-round
    rate ratios to the first variant (1.0 for that one)."""
    base = next(iter(rates))
    out = {}
    for label, values in rates.items():
        ratios = [v / b for v, b in zip(values, rates[base], strict=True) if b > 0 and v > 0]
        out[label] = {
            "median_rate": statistics.median(values),
            "median_cpu_ms": statistics.median(cpu_ms[label]),
            "ratio_to_first": math.exp(statistics.fmean(math.log(r) for r in ratios)) if ratios else float("nan"),
        }
    return out


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--path", choices=PATHS, required=True)
    p.add_argument("--variant", action="append", required=True, metavar="NAME=TREE",
                   help="a source tree to run (two or more); the first is the ratios' baseline")
    p.add_argument("--rounds", type=int, default=8)
    p.add_argument("--duration", type=float, default=5.0, help="seconds per point (api paths)")
    p.add_argument("--messages", type=int, default=600, help="ORUs per point (oru)")
    p.add_argument("--concurrency", type=int, default=None, help="16 for the api, 4 for the LIS (its containerConcurrency)")
    p.add_argument("--patients", type=int, default=20_000, help="patients in the database (api paths)")
    p.add_argument("--replicas", type=int, default=2,
                   help="processes per variant, launched in rotated order; a round's rate is their mean")
    args = p.parse_args(argv)
    variants = [v.split("=", 1) for v in args.variant]
    if len(variants) < 2 or any(len(v) != 2 or not v[0] for v in variants):
        p.error("give two or more --variant NAME=TREE")
    args.variants = {name: str(Path(tree).resolve()) for name, tree in variants}
    if len(args.variants) != len(variants):
        p.error("variant names must differ")
    args.concurrency = args.concurrency or (4 if args.path == "oru" else 16)
    return args


def launch_tree(tree: str, target: str, env: dict[str, str], log_dir: Path, label: str) -> Fn:
    """`bench.procs.launch`, from `tree` (its directory first on the path)."""
    port = free_port()
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{target}-{label}-{port}.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "shared.serve", "--source", f"{tree}/functions/{target}/main.py", "--target", target,
         "--signature-type", "http", "--host", "127.0.0.1", "--port", str(port)],
        cwd=tree, env={**os.environ, **env, "PYTHONUNBUFFERED": "1", "PYTHONPATH": tree},
        stdout=log_path.open("wb"), stderr=subprocess.STDOUT)
    return Fn(target=target, port=port, proc=proc, log_path=log_path, started_at=time.perf_counter())


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its children (gunicorn's master and worker)."""
    root = psutil.Process(pid)
    return sum(p.cpu_times().user + p.cpu_times().system for p in [root, *root.children(recursive=True)])


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    started = time.perf_counter()

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - started:6.1f}s] {message}", file=sys.stderr, flush=True)

    import sqlalchemy as sa  # noqa: PLC0415

    from bench import coldstart, seed  # noqa: PLC0415
    from bench.load import ensure_wrk, fixed_point, http_point  # noqa: PLC0415
    from bench.oru import push_file  # noqa: PLC0415
    from bench.procs import launch_sink  # noqa: PLC0415
    from bench.runner import _port_open, _ready, create_token  # noqa: PLC0415
    from shared.migrate import migrate  # noqa: PLC0415
    from tests.support.database import admin_url, create_database, drop_database  # noqa: PLC0415

    work = ROOT / "bench" / ".work" / ("ab-" + datetime.now().strftime("%Y%m%d-%H%M%S"))
    work.mkdir(parents=True, exist_ok=True)
    wrk = ensure_wrk(log) if args.path in API_PATHS else None
    admin = admin_url()
    url = create_database(admin, prefix="pmbench")
    procs: list[Fn] = []
    labels = list(args.variants)
    rates: dict[str, list[float]] = {label: [] for label in labels}
    cpu_ms: dict[str, list[float]] = {label: [] for label in labels}
    rounds: list[dict] = []
    try:
        engine = sa.create_engine(url)
        migrate(engine)
        engine.dispose()
        env = {"DATABASE_URL": url, "DATA_DIR": str(work / "data")}
        sink = launch_sink(work / "logs")
        procs.append(sink)
        wait_until(sink, coldstart.hello_probe)
        env["K_SINK"] = sink.url
        target = "lis_consumer" if args.path == "oru" else "api"
        known, pool = 300, f"L{uuid.uuid4().hex[:6].upper()}"

        def batch(count: int, **kwargs) -> Path:
            return push_file(work, count, **kwargs)

        if target == "lis_consumer":
            # The known patients, made by a consumer of their own (this tree's) that is stopped before
            # the variants start: the first consumer started on a database ran slower all run long.
            maker = launch_tree(str(ROOT), target, {**production_env(target), **env}, work / "logs", "maker")
            try:
                wait_until(maker, lambda f: _port_open(f.port), timeout=90)
                fixed_point(maker.port, batch(known, patients=known, pool=pool, each_patient_once=True), args.concurrency)
            finally:
                maker.stop()
        fns = {}  # "label#replica" → process: a process can run faster or slower than its twin for the
        # whole run (seen: 20 % between two of the same tree), so each variant runs in several
        for replica in range(args.replicas):
            for label in orders(labels, replica + 1)[replica]:
                key = f"{label}#{replica}"
                fns[key] = launch_tree(args.variants[label], target, {**production_env(target), **env},
                                       work / "logs", key.replace("#", "-"))
                procs.append(fns[key])
        for fn in fns.values():
            wait_until(fn, _ready if target == "api" else (lambda f: _port_open(f.port)), timeout=90)

        if target == "api":
            token = create_token(url, ["patients:read", "patients:write"])
            per = 300 // len(fns)
            for fn in fns.values():  # the same warm-up for every variant: registrations of its own
                seed.seed_sample(fn.port, token, per)
            seed.clone(url, args.patients)
            items = {"get": work / "ids.txt", "search": work / "queries.txt"}.get(args.path)
            if args.path == "get":
                items.write_text("\n".join(seed.sample_ids(url, 5000)) + "\n")
            elif args.path == "search":
                items.write_text("\n".join(seed.search_queries(url, 1000)) + "\n")

            def point(fn: Fn, seconds: float) -> dict:
                return http_point(wrk, fn.port, args.path, args.concurrency, seconds, token=token, items=items)

            for fn in fns.values():
                point(fn, 3.0)
        else:

            # the same warm-up for every process: new patients of its own, then known ones
            for fn in fns.values():
                fixed_point(fn.port, batch(100, patients=100, each_patient_once=True), args.concurrency)
                fixed_point(fn.port, batch(200, patients=known, pool=pool), args.concurrency)
            # As the bench's LIS section does after its first pass (`bench.lis.analyze`): without it the
            # plans each process's connections made while the tables were small are kept as they grow,
            # and the first process warmed up kept the worst ones — it ran 25–40 % slower all run long.
            analyze(url)

            def point(fn: Fn, _seconds: float) -> dict:
                result = fixed_point(fn.port, batch(args.messages, patients=known, pool=pool), args.concurrency)
                return {**result, "ok_rps": result["ok"] / result["duration_s"]}

        for r, order in enumerate(orders(list(fns), args.rounds)):
            measured: dict[str, list[tuple[float, float]]] = {label: [] for label in labels}
            for key in order:
                fn = fns[key]
                before = tree_cpu_seconds(fn.proc.pid)
                result = point(fn, args.duration)
                spent = tree_cpu_seconds(fn.proc.pid) - before
                answered = result.get("ok") or result["ok_rps"] * args.duration
                measured[key.split("#")[0]].append((result["ok_rps"], spent / max(answered, 1) * 1000))
                rounds.append({"round": r, "process": key, "rate": result["ok_rps"], "cpu_ms": measured[key.split("#")[0]][-1][1],
                               "p99_ms": result.get("p99_ms"), "statuses": result.get("statuses")})
                log(f"round {r} {key}: {result['ok_rps']:.0f}/s, {rounds[-1]['cpu_ms']:.2f} ms CPU per request"
                    + (f", p99 {result['p99_ms']:.1f} ms" if result.get("p99_ms") else "")
                    + f" {result.get('statuses')}")
            for label, points in measured.items():
                rates[label].append(statistics.fmean(rate for rate, _cpu in points))
                cpu_ms[label].append(statistics.fmean(cpu for _rate, cpu in points))
    finally:
        for fn in procs:
            fn.stop()
        drop_database(admin, url)
    verdict = summary(rates, cpu_ms)
    for label, s in verdict.items():
        print(f"{label}: median {s['median_rate']:.0f}/s, {s['median_cpu_ms']:.2f} ms CPU per request, "
              f"rate ÷ {labels[0]} per round (geometric mean) {s['ratio_to_first']:.3f}")
    OUT.mkdir(parents=True, exist_ok=True)
    out = OUT / f"ab-{args.path}-{datetime.now().strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps({"path": args.path, "variants": args.variants, "rounds": rounds, "summary": verdict},
                              indent=1, default=str))
    print(f"{out} written")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
