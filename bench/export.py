"""The FHIR Bulk Data export section: every patient with their lab results, exported by the jobs function
(production settings, its real time budget) and downloaded through the api, with both processes'
memory sampled.

Seeding gives each patient without orders one order with ``RESULTS_PER_ORDER`` results (SQL, in one
statement each). The bench plays the broker: it delivers each step's ``fhir.export.requested`` event
to the jobs function as a binary CloudEvent, waits for the answer, reads the next step from the
export's row, and delivers that, until the export is completed. The figures: resources exported per
second, seconds end to end, and the jobs function's peak memory beside its idle memory (flat means the
export streams: one page in memory, never the export).
"""

from __future__ import annotations

import http.client
import time
import uuid
from typing import Any

import sqlalchemy as sa

from bench import client
from bench.procs import Fn, MemorySampler

RESULTS_PER_ORDER = 3  # the VALUES list below: potassium, sodium, glucose


def seed_results(url: str) -> dict[str, Any]:
    """One order with results per patient that has none (repeated runs add nothing)."""
    engine = sa.create_engine(url)
    started = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(sa.text(
            "CREATE TEMP TABLE bench_orders ON COMMIT DROP AS SELECT gen_random_uuid() AS id, p.id AS patient_id "
            "FROM patients p WHERE NOT EXISTS (SELECT 1 FROM lab_orders o WHERE o.patient_id = p.id)"))
        orders = conn.execute(sa.text(
            "INSERT INTO lab_orders (id, patient_id, placer_namespace, placer_number, filler_namespace, filler_number, "
            "code_system, code, code_display, status, source, version, created_at, updated_at, ordered_at) "
            "SELECT id, patient_id, 'BENCH', 'P' || id, 'LAB', 'F' || id, 'LN', '24323-8', 'Metabolic panel', "
            "'final', 'lis', 1, now(), now(), now() FROM bench_orders")).rowcount
        results = conn.execute(sa.text(
            "INSERT INTO lab_results (id, order_id, patient_id, result_key, code_system, code, code_display, value_type, "
            "value, units, reference_range, abnormal_flags, status, observed_at, observed_text, notes, version, "
            "previous_versions, created_at, updated_at) "
            "SELECT gen_random_uuid(), o.id, o.patient_id, 'LN|' || c.code || '|#1', 'LN', c.code, c.display, 'NM', "
            "(3 + mod(abs(hashtext(o.id::text || c.code)), 300) / 100.0)::text, c.units, c.range, "
            "ARRAY[]::text[], 'F', now(), to_char(now() AT TIME ZONE 'UTC', 'YYYYMMDDHH24MI'), ARRAY[]::text[], 1, "
            "'[]'::jsonb, now(), now() FROM bench_orders o CROSS JOIN (VALUES "
            "('2823-3', 'Potassium', 'mmol/L', '3.5-5.1'), ('2951-2', 'Sodium', 'mmol/L', '135-145'), "
            "('2345-7', 'Glucose', 'mg/dL', '70-99')) AS c(code, display, units, range)")).rowcount
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE lab_orders, lab_results"))
    engine.dispose()
    return {"orders": orders, "results": results, "seconds": round(time.perf_counter() - started, 1)}


def _deliver(jobs: Fn, export_id: str, step: int) -> int:
    from shared.events import catalog  # noqa: PLC0415

    headers = {"ce-specversion": "1.0", "ce-id": uuid.uuid4().hex, "ce-source": "/bench/export",
               "ce-type": catalog.FHIR_EXPORT_REQUESTED, "Content-Type": "application/json"}
    body = {"export_id": export_id, "step": step}
    return client.request(jobs.port, "POST", "/", body=body, headers=headers, timeout=600)[0]


def _state(engine: sa.Engine, export_id: str) -> tuple[str, int, int]:
    with engine.connect() as conn:
        row = conn.execute(sa.text("SELECT status, step, written FROM fhir_exports WHERE id = :id"), {"id": export_id}).one()
    return row.status, row.step, row.written


def _download(api: Fn, token: str, url: str) -> tuple[int, int]:
    """(lines, bytes) of one file, read in 64 KiB blocks (the client holds no file either)."""
    path = "/fhir/" + url.split("/fhir/", 1)[1]
    conn = http.client.HTTPConnection("127.0.0.1", api.port, timeout=600)
    try:
        conn.request("GET", path, headers=client.bearer(token))
        resp = conn.getresponse()
        if resp.status != 200:
            raise RuntimeError(f"download answered {resp.status}")
        lines = size = 0
        while block := resp.read(65536):
            lines += block.count(b"\n")
            size += len(block)
        return lines, size
    finally:
        conn.close()


def run(url: str, api: Fn, jobs: Fn, token: str, log) -> dict[str, Any]:
    import json  # noqa: PLC0415

    seeded = seed_results(url)
    log(f"export: seeded {seeded['orders']} orders, {seeded['results']} results in {seeded['seconds']} s")
    idle = jobs.memory()
    status, body = client.request(api.port, "GET", "/fhir/$export", headers={
        **client.bearer(token), "Prefer": "respond-async", "Accept": "application/fhir+json"}, timeout=30)
    if status != 202:
        raise RuntimeError(f"kick-off answered {status}: {body[:200]!r}")
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        export_id = str(conn.execute(sa.text("SELECT id FROM fhir_exports ORDER BY created_at DESC LIMIT 1")).scalar_one())
    started = time.perf_counter()
    slices = 0
    with MemorySampler(jobs) as jobs_mem:
        state = _state(engine, export_id)
        while state[0] in ("accepted", "in-progress"):
            answer = _deliver(jobs, export_id, state[1])
            slices += 1
            if answer != 200:
                raise RuntimeError(f"jobs answered {answer} to step {state[1]}")
            state = _state(engine, export_id)
            log(f"export: step {state[1]}, {state[2]} resources written, {time.perf_counter() - started:.0f} s")
    export_s = time.perf_counter() - started
    engine.dispose()
    if state[0] != "completed":
        raise RuntimeError(f"export ended {state[0]}")
    status, body = client.request(api.port, "GET", f"/fhir/$export-status/{export_id}", headers=client.bearer(token),
                                  timeout=60)
    manifest = json.loads(body)
    started = time.perf_counter()
    lines = size = 0
    with MemorySampler(api) as api_mem:
        for item in manifest["output"]:
            n, b = _download(api, token, item["url"])
            if n != item["count"]:
                raise RuntimeError(f"{item['type']} file: {n} lines, manifest says {item['count']}")
            lines, size = lines + n, size + b
    download_s = time.perf_counter() - started
    per_type: dict[str, int] = {}
    for item in manifest["output"]:
        per_type[item["type"]] = per_type.get(item["type"], 0) + item["count"]
    return {"resources": state[2], "per_type": per_type, "files": len(manifest["output"]), "slices": slices,
            "export_s": round(export_s, 1), "rate": round(state[2] / export_s, 0) if export_s else 0.0,
            "download_s": round(download_s, 1), "download_mb": round(size / 2**20, 1),
            "jobs_idle": idle, "jobs_peak": jobs_mem.peak, "api_peak": api_mem.peak, "seeded": seeded}
