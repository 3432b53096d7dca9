"""`python -m bench.docs`: copy the last run (bench/results.json) into docs/performance.md, between the
``<!-- bench:begin -->`` and ``<!-- bench:end -->`` markers: the machine, the settings, the table."""

from __future__ import annotations

import json
import sys

from bench.procs import ROOT
from bench.report import markdown, render
from bench.runner import RESULTS

DOC = ROOT / "docs" / "performance.md"
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"


def block(results: dict) -> str:
    m = results.get("machine", {})
    api_env = results.get("processes", {}).get("api", {})
    cfg = results.get("config", {})
    data = results.get("dataset", {})
    lines = [
        BEGIN,
        f"Run of {results.get('started_at')} ({results.get('elapsed_s')} s), `python -m bench` "
        f"(points of {cfg.get('duration')} s, concurrency {cfg.get('concurrency')}, LIS {cfg.get('lis_concurrency')}, "
        f"{cfg.get('cold_runs')} cold starts per function).",
        "",
        f"- Machine: {m.get('cpu_model')}, {m.get('cpus_usable')} of {m.get('cpus')} CPUs usable, "
        f"{m.get('memory_gb')} GB RAM; {m.get('os')}, kernel {m.get('kernel')}; shared with other workloads "
        f"(load average {m.get('loadavg_start')} at the start, {m.get('loadavg_end')} at the end).",
        f"- Software: Python {m.get('python')}, PostgreSQL {m.get('postgresql')} ({m.get('postgresql_settings')}), "
        f"functions-framework {m.get('functions_framework')}, gunicorn {m.get('gunicorn')}, SQLAlchemy {m.get('sqlalchemy')}, "
        f"pg8000 {m.get('pg8000')}; load from {m.get('load_generator')}.",
        f"- api process (from knative/app/services.yaml and knative/platform/config.yaml): WORKERS={api_env.get('WORKERS')}, "
        f"THREADS={api_env.get('THREADS')}, DB_POOL_SIZE={api_env.get('DB_POOL_SIZE')}, "
        f"API_KEY_CACHE_SECONDS={api_env.get('API_KEY_CACHE_SECONDS')}, LOG_LEVEL={api_env.get('LOG_LEVEL')}; "
        "hello-world with the same settings.",
        f"- Data: {data.get('patients')} patients ({data.get('sample_via_api')} registered through POST /patients, "
        f"the rest cloned from them in SQL with their identifiers and name-search tokens).",
        "",
        markdown(results),
        "",
        "```text",
        render(results),
        "```",
    ]
    if results.get("errors"):
        lines += ["", f"Sections that failed in this run: `{results['errors']}`"]
    lines.append(END)
    return "\n".join(lines)


def main() -> int:
    results = json.loads(RESULTS.read_text())
    text = DOC.read_text()
    if BEGIN not in text or END not in text:
        print(f"{DOC} has no {BEGIN} … {END} block", file=sys.stderr)
        return 1
    head, rest = text.split(BEGIN, 1)
    _old, tail = rest.split(END, 1)
    DOC.write_text(head + block(results) + tail)
    print(f"{DOC} updated from {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
