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


def targets(results: dict) -> list[dict]:
    """The issue's targets, each with its measured value and verdict."""
    out = []
    api = results.get("api", {})
    c16 = api.get("16", {})
    hello, get, create, raw_insert = (c16.get(k) for k in ("hello", "get", "create", "raw_insert"))
    if hello and get:
        ratio = get["ok_rps"] / hello["rps"] if hello["rps"] else None
        out.append({"target": "GET /patients/{id} c=16 RPS ≥ 50% of hello-world", "value": ratio,
                    "shown": f"{ratio:.0%}" if ratio is not None else "-", "verdict": verdict(ratio, 0.5, True)})
        out.append({"target": "GET /patients/{id} c=16 p99 ≤ 25 ms", "value": get["p99_ms"],
                    "shown": f"{get['p99_ms']:.1f} ms", "verdict": verdict(get["p99_ms"], 25.0, False)})
    if create and raw_insert:
        ratio = create["ok_rps"] / raw_insert["rps"] if raw_insert["rps"] else None
        out.append({"target": "POST /patients c=16 ≥ 35% of raw INSERT+COMMIT", "value": ratio,
                    "shown": f"{ratio:.0%}" if ratio is not None else "-", "verdict": verdict(ratio, 0.35, True)})
    lis = results.get("lis")
    if isinstance(lis, dict) and lis.get("points"):
        best = max(p["ok_rate"] for p in lis["points"].values())
        out.append({"target": "LIS ≥ 250 ORU/s on one instance", "value": best, "shown": f"{best:.0f}/s",
                    "verdict": verdict(best, 250.0, True)})
    exp = results.get("export")
    if isinstance(exp, dict) and exp.get("resources"):
        minutes = exp["export_s"] / 60
        out.append({"target": "FHIR export of every patient with their results in minutes (≤ 10)", "value": minutes,
                    "shown": f"{minutes:.1f} min for {exp['resources']} resources", "verdict": verdict(minutes, 10.0, False)})
        growth = exp["jobs_peak"]["pss_mb"] - exp["jobs_idle"]["pss_mb"]
        out.append({"target": "FHIR export memory flat: jobs peak ≤ idle + 100 MB", "value": growth,
                    "shown": f"+{growth:.0f} MB", "verdict": verdict(growth, 100.0, False)})
    for name, cold in (results.get("cold_start") or {}).items():
        if name == "hello":
            continue
        out.append({"target": f"cold start {name} ≤ 2.0× hello-world", "value": cold["ratio_to_hello"],
                    "shown": f"{cold['ratio_to_hello']:.2f}×", "verdict": verdict(cold["ratio_to_hello"], 2.0, False)})
        out.append({"target": f"idle memory {name} ≤ 120 MB (PSS of the process tree)", "value": cold["idle_pss_mb"],
                    "shown": f"{cold['idle_pss_mb']:.0f} MB", "verdict": verdict(cold["idle_pss_mb"], 120.0, False)})
    return out


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
    rows = [[f"{fn} {kind}", f"{m['wall_ms']:.1f}", f"{m['cpu_ms']:.1f}", f"{m['statements']:.0f}",
             f"{1000 / m['cpu_ms']:.0f}/s" if m["cpu_ms"] else "-"]
            for fn, kinds in anat.items() for kind, m in kinds.items()]
    if rows:
        parts.append("Where a request's time goes (one at a time, in-process, no HTTP server)\n" + _table(
            ["request", "wall ms", "CPU ms", "SQL statements", "CPU-bound ceiling of one worker"], rows))
    rows = [[t["target"], t["shown"], t["verdict"]] for t in results.get("targets", [])]
    if rows:
        parts.append("Targets\n" + _table(["target", "measured", "verdict"], rows))
    return "\n\n".join(parts)
