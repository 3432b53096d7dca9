"""`make profile` / `python -m bench.profile`: where each hot path spends its CPU, under load.

The functions are started as `make bench` starts them (``bench.procs.launch``: production settings from
the Knative manifests, gunicorn through ``python -m shared.serve``) on a dedicated database seeded as the
bench seeds it (fewer patients by default: the profile is about the code, not the plans). For each path
the load runs from a separate process (wrk, or ``bench.loadgen``) while py-spy samples the gunicorn
worker (``py-spy record --pid <worker> --gil --format raw``: collapsed stacks of the thread holding the
GIL, so the samples are where the worker's Python CPU went — without ``--gil`` the 8 threads waiting on
PostgreSQL's answers in ``socket.readinto`` fill the profile). One recording per path gives, under ``bench/.profiles/``
(git-ignored):

- ``<path>.collapsed``: the stacks (flamegraph.pl, inferno and speedscope read them),
- ``<path>.svg``: a flame graph of them (``bench.flame.svg``; tooltips give samples and shares),
- ``<path>.txt``: the top frames by self and by total samples and self samples by package,
- ``summary.md``: one Markdown row per recorded path (the top-frames table of docs/performance.md);
  ``python -m bench.profile --markdown`` prints it again from the recorded stacks without a run.

Paths: ``get`` (GET /patients/{id}), ``search`` (GET /patients?name=…), ``create`` (POST /patients),
``oru`` (ORU^R01 with 8 OBX as Pub/Sub push bodies to lis_consumer, 4 at a time: its
containerConcurrency), ``cold`` (py-spy launches each function and records from the first instruction
to its first 2xx on a database route, over ``--cold-runs`` launches).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from datetime import datetime
from pathlib import Path

import psutil
import sqlalchemy as sa

from bench import coldstart, flame, seed
from bench.load import ensure_wrk, fixed_point, http_point
from bench.oru import push_file
from bench.procs import ROOT, Fn, compile_project, launch, launch_sink, production_env, wait_until

OUT = ROOT / "bench" / ".profiles"
PATHS = ("get", "search", "create", "oru", "cold")
COLD_FUNCTIONS = ("api", "lis_consumer", "notify", "jobs")


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--paths", default=",".join(PATHS), help="comma-separated subset of " + ",".join(PATHS))
    p.add_argument("--duration", type=float, default=10.0, help="seconds of sampling per path")
    p.add_argument("--concurrency", type=int, default=16, help="load concurrency of the api paths")
    p.add_argument("--lis-concurrency", type=int, default=4)
    p.add_argument("--oru-patients", type=int, default=200, help="known patients the ORU results are for")
    p.add_argument("--oru-new-patients", action="store_true", help="oru: every message for a new patient (oru-new.*)")
    p.add_argument("--rate", type=int, default=200, help="py-spy samples per second")
    p.add_argument("--patients", type=int, default=20_000)
    p.add_argument("--sample", type=int, default=300, help="patients registered through the api before cloning")
    p.add_argument("--cold-runs", type=int, default=3)
    p.add_argument("--cold-functions", default=",".join(COLD_FUNCTIONS))
    p.add_argument("--top", type=int, default=25, help="frames per table in <path>.txt")
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument("--keep-db", action="store_true")
    p.add_argument("--markdown", action="store_true", help="print summary.md from the recorded stacks; no run")
    return p.parse_args(argv)


def summary_markdown(out: Path) -> str:
    """The top-frames table of every path recorded under ``out`` (docs/performance.md's format)."""
    rows = [flame.MARKDOWN_HEADER]
    for path in sorted(out.glob("*.collapsed")):
        title = (path.with_suffix(".txt").read_text().splitlines() or [path.stem])[0] if path.with_suffix(".txt").exists() \
            else path.stem
        rows.append(flame.markdown_row(title, flame.summary(flame.parse(path.read_text()))))
    return "\n".join(rows)


def ensure_pyspy(log) -> str:
    """py-spy from the venv (the test extra pins it); installed into it with pip when missing."""
    here = Path(sys.executable).parent / "py-spy"
    found = str(here) if here.exists() else shutil.which("py-spy")
    if not found:
        log("py-spy missing: pip install py-spy")
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "py-spy"], check=True, timeout=600)
        found = str(here) if here.exists() else shutil.which("py-spy")
    if not found:
        raise RuntimeError("py-spy could not be installed")
    return found


def record_pid(pyspy: str, pid: int, seconds: float, rate: int, raw: Path) -> None:
    """Sample the GIL holder of ``pid`` for ``seconds`` into ``raw`` (collapsed stacks). py-spy needs
    ptrace (root here; elsewhere CAP_SYS_PTRACE)."""
    done = subprocess.run([pyspy, "record", "--pid", str(pid), "--duration", str(max(1, round(seconds))),
                           "--rate", str(rate), "--gil", "--format", "raw", "--output", str(raw)],
                          capture_output=True, text=True, timeout=seconds + 60)
    if done.returncode != 0 or not raw.exists():
        raise RuntimeError(f"py-spy record failed ({done.returncode}): {done.stderr[-1500:]}")


def write_outputs(out: Path, name: str, stacks: Counter, title: str, notes: list[str], top: int) -> flame.Summary:
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.collapsed").write_text("".join(f"{';'.join(s)} {n}\n" for s, n in stacks.items()))
    (out / f"{name}.svg").write_text(flame.svg(stacks, title))
    summary = flame.summary(stacks, top=top)
    (out / f"{name}.txt").write_text(flame.render_text(title, summary, notes))
    return summary


class _Background(threading.Thread):
    """A load point run in a thread while py-spy samples (its result kept for the notes)."""

    def __init__(self, func, *args, **kwargs) -> None:
        super().__init__(daemon=True)
        self.func, self.args, self.kwargs = func, args, kwargs
        self.result: dict | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = self.func(*self.args, **self.kwargs)
        except BaseException as exc:  # noqa: BLE001 — handed to the caller
            self.error = exc


def profile_under_load(pyspy: str, fn: Fn, load: _Background, name: str, title: str,
                       args: argparse.Namespace, log) -> flame.Summary:
    pid = fn.worker_pid()
    load.start()
    time.sleep(1.0)  # the load is running before sampling starts
    raw = args.out / f"{name}.raw"
    record_pid(pyspy, pid, args.duration, args.rate, raw)
    load.join()
    if load.error:
        raise load.error
    stacks = flame.parse(raw.read_text())
    raw.unlink()
    r = load.result or {}
    rate = r.get("ok_rps", 0.0)
    ticks = args.rate * round(args.duration)
    notes = [f"load: {r.get('generator')} {rate:.0f} 2xx/s, p99 {r.get('p99_ms', 0):.1f} ms, statuses {r.get('statuses')}",
             f"py-spy --gil at {args.rate}/s on the gunicorn worker (pid {pid}) for {args.duration:.0f} s: a sample is "
             f"taken when a thread holds the GIL (the worker's Python CPU); held in {sum(stacks.values()) / ticks:.0%} "
             "of the ticks"]
    summary = write_outputs(args.out, name, stacks, title, notes, args.top)
    log(f"{name}: {summary.samples} samples, {rate:.0f}/s under load; top self: "
        + ", ".join(f"{n} {summary.share(c):.0%}" for n, c in summary.by_self[:3]))
    return summary


def profile_cold(pyspy: str, targets: dict[str, coldstart.Probe], env: dict[str, str], work: Path,
                 args: argparse.Namespace, log) -> None:
    """py-spy starts each function (``--subprocesses``: the gunicorn master and its worker) and records
    until the first 2xx; the runs of a function are added up."""
    for target, probe in targets.items():
        stacks: Counter = Counter()
        seconds = []
        for run in range(args.cold_runs):
            raw = args.out / f"cold-{target}-{run}.raw"
            prefix = [pyspy, "record", "--subprocesses", "--nonblocking", "--rate", "500", "--format", "raw",
                      "--output", str(raw), "--"]
            fn = launch(target, {**production_env(target), **env}, work / "logs", prefix=prefix)
            try:
                seconds.append(wait_until(fn, probe, timeout=90))
            finally:
                # Stopping the server (py-spy's child: the gunicorn master) ends py-spy, which then writes its file.
                for p in psutil.Process(fn.proc.pid).children():
                    p.send_signal(signal.SIGTERM)
                try:
                    fn.proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    fn.proc.send_signal(signal.SIGINT)
                    fn.proc.wait(timeout=30)
            if raw.exists():
                stacks.update(flame.parse(raw.read_text()))
                raw.unlink()
        notes = [f"{args.cold_runs} launches under py-spy (--nonblocking, 500 samples/s, master and worker), launch → first 2xx "
                 f"{', '.join(f'{s:.2f}' for s in seconds)} s (slowed by the sampling: shares count, not seconds)"]
        summary = write_outputs(args.out, f"cold-{target}", stacks, f"cold start of {target}", notes, args.top)
        log(f"cold-{target}: {summary.samples} samples; top total: "
            + ", ".join(f"{n} {summary.share(c):.0%}" for n, c in summary.by_total[:4]))


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    if args.markdown:
        print(summary_markdown(args.out))
        return 0
    paths = [p for p in args.paths.split(",") if p]
    unknown = set(paths) - set(PATHS)
    if unknown:
        raise SystemExit(f"unknown paths: {sorted(unknown)} (known: {', '.join(PATHS)})")
    started = time.perf_counter()

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - started:6.1f}s] {message}", file=sys.stderr, flush=True)

    from bench.runner import _port_open, _ready, create_token  # noqa: PLC0415
    from shared.migrate import migrate  # noqa: PLC0415
    from tests.support.database import admin_url, create_database, drop_database  # noqa: PLC0415

    args.out.mkdir(parents=True, exist_ok=True)
    work = ROOT / "bench" / ".work" / ("profile-" + datetime.now().strftime("%Y%m%d-%H%M%S"))
    work.mkdir(parents=True, exist_ok=True)
    pyspy = ensure_pyspy(log)
    wrk = ensure_wrk(log)
    compile_project()
    admin = admin_url()
    url = create_database(admin, prefix="pmbench")
    procs: list[Fn] = []
    try:
        engine = sa.create_engine(url)
        migrate(engine)
        engine.dispose()
        token = create_token(url, ["patients:read", "patients:write"])
        env = {"DATABASE_URL": url, "DATA_DIR": str(work / "data")}
        sink = launch_sink(work / "logs")
        procs.append(sink)
        wait_until(sink, coldstart.hello_probe)
        env["K_SINK"] = sink.url
        api = launch("api", {**production_env("api"), **env}, work / "logs")
        procs.append(api)
        wait_until(api, _ready)
        seed.seed_sample(api.port, token, args.sample)
        stats = seed.clone(url, args.patients)
        log(f"database ready: {stats['patients']} patients; py-spy {pyspy}; load from {wrk or 'bench.loadgen'}")
        ids = work / "ids.txt"
        ids.write_text("\n".join(seed.sample_ids(url, 5000)) + "\n")
        queries = work / "queries.txt"
        queries.write_text("\n".join(seed.search_queries(url, 1000)) + "\n")
        api_paths = {"get": ("GET /patients/{id}", ids), "search": ("GET /patients?name=…", queries),
                     "create": ("POST /patients", None)}
        for name, (title, items) in api_paths.items():
            if name not in paths:
                continue
            http_point(wrk, api.port, name, args.concurrency, 2.0, token=token, items=items)  # warm-up
            load = _Background(http_point, wrk, api.port, name, args.concurrency, args.duration + 2.5, token=token,
                               items=items)
            profile_under_load(pyspy, api, load, name, f"{title} at c={args.concurrency}", args, log)
        patient_id = seed.sample_ids(url, 1)[0]
        welcome_id = seed.register_welcome_patient(api.port, token)
        api.stop()
        if "oru" in paths:
            lis = launch("lis_consumer", {**production_env("lis_consumer"), **env}, work / "logs")
            procs.append(lis)
            wait_until(lis, lambda f: _port_open(f.port))

            pool = f"L{uuid.uuid4().hex[:6].upper()}"

            def batch(count: int, **kwargs) -> Path:
                return push_file(work, count, **kwargs)

            # As in the bench: results for known patients (a first pass makes them known) unless
            # --oru-new-patients, where every message brings a patient the LIS must create.
            if args.oru_new_patients:
                warm = fixed_point(lis.port, batch(100, patients=100, each_patient_once=True), args.lis_concurrency)
            else:
                warm = fixed_point(lis.port, batch(args.oru_patients, patients=args.oru_patients, pool=pool,
                                                   each_patient_once=True), args.lis_concurrency)
            rate = max(20.0, warm["ok"] / warm["duration_s"])
            count = int(rate * 1.5 * (args.duration + 3))  # enough to outlast the sampling when warm
            measured = (batch(count, patients=count, each_patient_once=True) if args.oru_new_patients
                        else batch(count, patients=args.oru_patients, pool=pool))
            load = _Background(fixed_point, lis.port, measured, args.lis_concurrency)
            title = f"ORU^R01 (8 OBX, {'new' if args.oru_new_patients else 'known'} patients) push at c={args.lis_concurrency}"
            profile_under_load(pyspy, lis, load, "oru-new" if args.oru_new_patients else "oru", title, args, log)
            lis.stop()
        if "cold" in paths:
            probes = {
                "api": coldstart.api_probe(token, patient_id),
                "lis_consumer": coldstart.lis_probe(f"C{time.time_ns() % 10**5:05d}"),
                "notify": coldstart.welcome_probe(welcome_id),
                "jobs": coldstart.tick_probe(),
            }
            wanted = [t for t in args.cold_functions.split(",") if t]
            profile_cold(pyspy, {t: probes[t] for t in wanted}, env, work, args, log)
    finally:
        for fn in procs:
            fn.stop()
        if not args.keep_db:
            drop_database(admin, url)
    (args.out / "summary.md").write_text(summary_markdown(args.out) + "\n")
    print(f"profiles under {args.out} ({time.perf_counter() - started:.0f} s; summary.md for the docs); logs under {work}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
