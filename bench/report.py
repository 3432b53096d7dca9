"""Targets, verdicts and the printed table."""

from __future__ import annotations

from collections.abc import Iterable


def verdict(value: float | None, target: float, higher_is_better: bool) -> str:
    """"met" or "MISSED by …" (how far from the target, as a factor and an absolute gap)."""
    if value is None:
        return "not measured"
    if higher_is_better:
        if value >= target:
            return "met"
        return f"MISSED: {value:.3g} < {target:.3g} (needs ×{target / value:.2f})" if value else "MISSED: 0"
    if value <= target:
        return "met"
    return f"MISSED: {value:.3g} > {target:.3g} (needs ÷{value / target:.2f})"


FUNCTIONS = ("api", "lis_consumer", "notify", "jobs")
MEMORY_LIMIT_MB = 120.0


def _goal(name: str, value: float | None, target: float, higher_is_better: bool, shown: str,
          basis: str = "") -> dict:
    v = verdict(value, target, higher_is_better)
    return {"target": name, "value": value, "shown": shown, "basis": basis, "verdict": v,
            "pass": None if value is None else v == "met"}


def _ratio(value: float | None, base: float | None) -> float | None:
    return value / base if value is not None and base else None


def _pct(x: float | None) -> str:
    return f"{x:.0%}" if x is not None else "-"


def lis_point(lis: dict) -> tuple[str, dict] | None:
    """The LIS point the goal is stated for: 4 client threads (the Service's containerConcurrency),
    else the best one measured."""
    points = lis.get("points") or {}
    if not points:
        return None
    if "4" in points:
        return "4", points["4"]
    return max(points.items(), key=lambda kv: kv[1]["ok_rate"])


def targets(results: dict) -> list[dict]:
    """Every goal of issue 15's table (and the fuller set it keeps), each as a ratio to its ceiling from
    the same run, with the measured value and pass/fail. A goal whose section did not run is listed as
    not measured, never dropped."""
    out = []
    c16 = results.get("api", {}).get("16", {})
    hello, get, search, create, raw_insert = (c16.get(k) for k in ("hello", "get", "search", "create", "raw_insert"))
    hello_rps = hello["rps"] if hello else None
    ratio = _ratio(get and get["ok_rps"], hello_rps)
    out.append(_goal("GET /patients/{id} at c=16 ≥ 50 % of hello-world", ratio, 0.5, True, _pct(ratio),
                     f"{get['ok_rps']:.0f}/s vs {hello_rps:.0f}/s" if ratio is not None else ""))
    p99 = get["p99_ms"] if get else None
    out.append(_goal("GET /patients/{id} at c=16 p99 ≤ 25 ms", p99, 25.0, False,
                     f"{p99:.1f} ms" if p99 is not None else "-"))
    ratio = _ratio(search and search["ok_rps"], hello_rps)
    out.append(_goal("search by name at c=16 ≥ 25 % of hello-world", ratio, 0.25, True, _pct(ratio),
                     f"{search['ok_rps']:.0f}/s vs {hello_rps:.0f}/s" if ratio is not None else ""))
    raw = raw_insert["rps"] if raw_insert else None
    ratio = _ratio(create and create["ok_rps"], raw)
    out.append(_goal("POST /patients at c=16 ≥ 20 % of raw pg8000 INSERT+COMMIT", ratio, 0.2, True, _pct(ratio),
                     f"{create['ok_rps']:.0f}/s vs {raw:.0f}/s" if ratio is not None else ""))
    lis = results.get("lis")
    point = lis_point(lis) if isinstance(lis, dict) else None
    rate = point[1]["ok_rate"] if point else None
    out.append(_goal("LIS ORU^R01 (8 OBX) push ≥ 250/s on one instance", rate, 250.0, True,
                     f"{rate:.0f}/s" if rate is not None else "-",
                     (f"c={point[0]}; {_pct(_ratio(rate, hello_rps))} of hello-world" if point else "")))
    cold = results.get("cold_start") or {}
    peaks = results.get("peak_memory") or {}
    for name in FUNCTIONS:
        c = cold.get(name)
        r = c["ratio_to_hello"] if c else None
        out.append(_goal(f"cold start {name} ≤ 2.0× hello-world", r, 2.0, False, f"{r:.2f}×" if r is not None else "-",
                         f"{c['median_s']:.2f} s vs {cold['hello']['median_s']:.2f} s" if c and "hello" in cold else ""))
    for name in FUNCTIONS:
        c = cold.get(name)
        idle = c["idle_pss_mb"] if c else None
        out.append(_goal(f"idle PSS {name} ≤ 120 MB", idle, MEMORY_LIMIT_MB, False,
                         f"{idle:.0f} MB" if idle is not None else "-"))
        peak = peaks.get(name, {}).get("pss_mb")
        out.append(_goal(f"peak PSS under load {name} ≤ 120 MB", peak, MEMORY_LIMIT_MB, False,
                         f"{peak:.0f} MB" if peak is not None else "-"))
    out += anatomy_goals(results)
    exp = results.get("export")
    if isinstance(exp, dict) and exp.get("resources"):
        minutes = exp["export_s"] / 60
        out.append(_goal("FHIR export of every patient with their results ≤ 10 min", minutes, 10.0, False,
                         f"{minutes:.1f} min", f"{exp['resources']} resources"))
        growth = exp["jobs_peak"]["pss_mb"] - exp["jobs_idle"]["pss_mb"]
        out.append(_goal("FHIR export memory flat: jobs peak ≤ idle + 100 MB", growth, 100.0, False, f"+{growth:.0f} MB"))
    return out


def anatomy_goals(results: dict) -> list[dict]:
    """Statements per request within the issue's budgets, and CPU within the budget the same run's
    ceilings imply (bench.anatomy.budgets)."""
    from bench.anatomy import LABELS, STATEMENT_BUDGET, budgets  # noqa: PLC0415

    c16 = results.get("api", {}).get("16", {})
    hello, raw = c16.get("hello"), c16.get("raw_insert")
    budget = budgets(hello["rps"], raw["rps"] if raw else None) if hello else {}
    measured = {k: v for kinds in (results.get("anatomy") or {}).values() for k, v in kinds.items()}
    out = []
    for kind, limit in STATEMENT_BUDGET.items():
        m = measured.get(kind)
        n = m["statements"] if m else None
        out.append(_goal(f"statements per {LABELS[kind]} ≤ {limit}", n, limit, False, f"{n:g}" if n is not None else "-",
                         f"{m.get('round_trips', '-')} round trips" if m else ""))
    for kind in STATEMENT_BUDGET:
        m, b = measured.get(kind), budget.get(kind)
        own = m.get("own_cpu_ms") if m else None
        if b is None:
            out.append(_goal(f"own CPU per {LABELS[kind]} within budget", None, 0, False, "-"))
            continue
        out.append(_goal(f"own CPU per {LABELS[kind]} ≤ {b['cpu_ms']:.2f} ms (≥ {b['goal_rps']:.0f}/s)", own, b["cpu_ms"],
                         False, f"{own:.2f} ms" if own is not None else "-",
                         f"{m['cpu_ms']:.2f} ms in all" if m else ""))
    return out


def markdown(results: dict) -> str:
    """The goals as a Markdown table (bench/.results/table.md, pasted into docs/performance.md)."""
    rows = results.get("targets") or targets(results)
    lines = ["| goal | measured | same-run basis | result |", "|---|---|---|---|"]
    for t in rows:
        result = "not measured" if t["pass"] is None else ("pass" if t["pass"] else "**FAIL** — " + t["verdict"])
        lines.append(f"| {t['target']} | {t['shown']} | {t.get('basis', '')} | {result} |")
    return "\n".join(lines)


def _table(headers: list[str], rows: Iterable[list[str]]) -> str:
    rows = [headers, *rows]
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(headers))]
    lines = []
    for n, row in enumerate(rows):
        lines.append("  ".join(str(cell).ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


SCENARIOS = [
    ("get", "GET /patients/{id}", "hello", "hello-world"),
    ("search", "GET /patients?name=…", "hello", "hello-world"),
    ("create", "POST /patients", "raw_insert", "raw INSERT+COMMIT"),
    ("hello", "hello-world (framework ceiling)", None, None),
    ("raw_select", "raw pg8000 PK SELECT", None, None),
    ("raw_insert", "raw pg8000 INSERT+COMMIT", None, None),
]


def render(results: dict) -> str:
    parts = []
    api = results.get("api", {})
    rows = []
    for c, points in api.items():
        for key, label, ceiling_key, ceiling_label in SCENARIOS:
            p = points.get(key)
            if not p:
                continue
            ceiling = points.get(ceiling_key) if ceiling_key else None
            ratio = f"{p['ok_rps'] / ceiling['rps']:.0%} of {ceiling_label} ({ceiling['rps']:.0f}/s)" if ceiling and ceiling["rps"] else ""
            bad = p["requests"] - p["ok"]
            rows.append([label, c, f"{p['ok_rps']:.0f}", f"{p['p50_ms']:.1f}", f"{p['p95_ms']:.1f}", f"{p['p99_ms']:.1f}",
                         str(bad) if bad else "0", ratio])
    if rows:
        parts.append("API (requests/s of 2xx answers; latency in ms)\n" + _table(
            ["scenario", "c", "rps", "p50", "p95", "p99", "non-2xx", "beside its ceiling"], rows))
    lis = results.get("lis")
    if isinstance(lis, dict) and lis.get("points"):
        parse = lis["parse_only"]["rate"]
        rows = [["ORU^R01 push → lis_consumer", c, f"{p['ok_rate']:.0f}", f"{p['p50_ms']:.1f}", f"{p['p99_ms']:.1f}",
                 f"{p['ok_rate'] / parse:.0%} of parse-only ({parse:.0f}/s)", f"{p['peak_memory']['pss_mb']:.0f} MB"]
                for c, p in lis["points"].items()]
        parts.append("LIS (messages/s end to end)\n" + _table(["scenario", "c", "msg/s", "p50", "p99", "beside its ceiling", "peak PSS"], rows)
                     + f"\nstored statuses: {lis['stored_statuses']}")
    elif lis:
        parts.append(f"LIS: {lis}")
    note = results.get("notify")
    if isinstance(note, dict) and note.get("requests"):
        parts.append("notify (patient.registered CloudEvents, welcome messages through the console provider)\n" + _table(
            ["scenario", "events", "events/s", "p99", "statuses", "peak PSS / RSS"],
            [["patient.registered → notify, c=4", str(note["requests"]), f"{note['ok_rate']:.0f}", f"{note['p99_ms']:.1f}",
              str(note["statuses"]), f"{note['peak_memory']['pss_mb']:.0f} / {note['peak_memory']['rss_mb']:.0f} MB"]]))
    mllp = results.get("mllp")
    if isinstance(mllp, dict) and mllp.get("points"):
        ceiling = mllp["parse_only"]["rate"]
        rows = [["ORU^R01 MLLP → adapter → Pub/Sub emulator, ACKed", c, f"{p['rate']:.0f}",
                 f"{p['rate'] / ceiling:.1%} of parse-only ({ceiling:.0f}/s)"] for c, p in mllp["points"].items()]
        parts.append("MLLP (messages acknowledged per second, end to end to the emulator)\n"
                     + _table(["scenario", "connections", "msg/s", "beside its ceiling"], rows))
    exp = results.get("export")
    if isinstance(exp, dict) and exp.get("resources"):
        rows = [["every patient with their results → NDJSON (jobs)", f"{exp['resources']}", f"{exp['export_s']:.0f}",
                 f"{exp['rate']:.0f}/s", f"{exp['jobs_idle']['pss_mb']:.0f} → {exp['jobs_peak']['pss_mb']:.0f}"],
                ["its files downloaded (api)", f"{exp['download_mb']:.0f} MB", f"{exp['download_s']:.0f}",
                 f"{exp['resources'] / exp['download_s']:.0f}/s" if exp["download_s"] else "-",
                 f"peak {exp['api_peak']['pss_mb']:.0f}"]]
        parts.append(f"FHIR Bulk Data export ({exp['per_type']}, {exp['files']} files, {exp['slices']} slices)\n"
                     + _table(["scenario", "resources", "seconds", "rate", "PSS MB idle → peak"], rows))
    cold = results.get("cold_start")
    if cold:
        peaks = results.get("peak_memory", {})
        rows = [[name, f"{c['median_s']:.2f}", f"{c['ratio_to_hello']:.2f}×", f"{c.get('import_s', 0):.2f}",
                 f"{c['idle_pss_mb']:.0f}", f"{c['idle_rss_mb']:.0f}",
                 f"{peaks[name]['pss_mb']:.0f} / {peaks[name]['rss_mb']:.0f}" if name in peaks else "-"]
                for name, c in cold.items()]
        parts.append("Cold start (launch → first 200 on a database route, median) and memory (MB)\n" + _table(
            ["function", "cold s", "vs hello", "of which importing its code", "idle PSS", "idle RSS",
             "peak under load PSS / RSS"], rows))
    anat = results.get("anatomy") or {}
    if anat:
        from bench.anatomy import HEADERS, budgets, rows as anatomy_rows  # noqa: PLC0415

        c16 = results.get("api", {}).get("16", {})
        hello, raw = c16.get("hello"), c16.get("raw_insert")
        budget = budgets(hello["rps"], raw["rps"] if raw else None) if hello else {}
        measured = {k: v for kinds in anat.values() for k, v in kinds.items()}
        basis = (f"budgets from this run at c=16: hello-world {hello['rps']:.0f}/s" if hello else "no api section: no budgets")
        if raw:
            basis += f", raw INSERT+COMMIT {raw['rps']:.0f}/s"
        parts.append("Where a request's time goes (one at a time, in-process, no HTTP server; own CPU = CPU − "
                     f"hello-world's; {basis})\n" + _table(HEADERS, anatomy_rows(measured, budget)))
    rows = [[t["target"], t["shown"], t.get("basis", ""),
             "not measured" if t.get("pass") is None else ("pass" if t["pass"] else "FAIL")]
            for t in results.get("targets", [])]
    if rows:
        parts.append("Goals (issue 15), each from this run\n" + _table(["goal", "measured", "same-run basis", "result"], rows))
    return "\n\n".join(parts)
