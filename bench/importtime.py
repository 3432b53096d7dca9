"""`python -m bench.importtime`: what each function imports before it serves and on its first request, and
what each package costs (``python -X importtime``), per phase.

For each function a fresh interpreter (production environment from the manifests, bytecode compiled as
in the image) runs three phases, each closed by a marker on stderr so the import lines fall into them:

- ``server``: ``shared.serve`` (gunicorn, functions-framework, Flask, click, the problem+json worker),
- ``function``: functions-framework's ``create_app`` loading ``functions/<name>/main.py``,
- ``first request``: the cold-start probe's request through the app (api: GET /patients/{id} with a
  token — auth, the read and its audit row; lis_consumer: an 8-OBX ORU push; notify: a
  patient.registered event; jobs: a PingSource tick of outbox-sweep, what wakes it) — what is imported lazily.

Importtime's *self* microseconds are summed per top-level package (``sqlalchemy``, ``pydantic``,
``shared.api``…), so each package's cost is counted once, where it is loaded. Prints a Markdown table per
function and writes bench/.results/importtime.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

from bench.procs import ROOT, compile_project, production_env

MARK = "bench-importtime-phase:"
PHASES = ("server", "function", "first request")
_LINE = re.compile(r"^import time:\s+(?P<self>\d+)\s+\|\s+(?P<cum>\d+)\s+\|(?P<indent>\s*)(?P<name>\S+)\s*$")
SOURCES = {"api": ("functions/api/main.py", "http"), "lis_consumer": ("functions/lis_consumer/main.py", "cloudevent"),
           "notify": ("functions/notify/main.py", "cloudevent"), "jobs": ("functions/jobs/main.py", "cloudevent")}

_SCRIPT = r'''
import json, sys
req = json.loads(sys.argv[1])
def mark(phase):
    sys.stderr.write("%s %s\n" % (req["mark"], phase)); sys.stderr.flush()
import shared.serve  # noqa: F401  gunicorn, functions-framework, Flask: what the container's command loads
mark("server")
from functions_framework import create_app
app = create_app(target=req["target"], source=req["source"], signature_type=req["signature"])
mark("function")
resp = app.test_client().open(req["path"], method=req["method"], headers=req["headers"],
                              data=req["body"].encode() if req["body"] is not None else None)
mark("first request")
print(json.dumps({"status": resp.status_code}))
'''


def package_of(module: str) -> str:
    """``sqlalchemy.orm.session`` → ``sqlalchemy``; the project's modules by their package: ``shared.api``."""
    parts = module.split(".")
    if parts[0] in ("shared", "functions") and len(parts) > 1:
        return ".".join(parts[:2])
    return parts[0]


def parse(stderr: str) -> dict[str, dict]:
    """importtime lines → per phase: total self µs, modules imported, self µs per package (largest first)."""
    phase_of_line: list[tuple[str, str, int]] = []
    pending: list[tuple[str, int]] = []
    for line in stderr.splitlines():
        if line.startswith(MARK):
            phase = line[len(MARK):].strip()
            phase_of_line += [(phase, name, us) for name, us in pending]
            pending = []
            continue
        m = _LINE.match(line)
        if m:
            pending.append((m.group("name"), int(m.group("self"))))
    out: dict[str, dict] = {}
    for phase in PHASES:
        per_package: dict[str, int] = defaultdict(int)
        modules = 0
        for p, name, us in phase_of_line:
            if p == phase:
                per_package[package_of(name)] += us
                modules += 1
        ranked = sorted(per_package.items(), key=lambda kv: -kv[1])
        out[phase] = {"self_ms": round(sum(per_package.values()) / 1000, 1), "modules": modules,
                      "packages_ms": {k: round(v / 1000, 1) for k, v in ranked}}
    return out


def measure(target: str, request: dict | Callable[[], dict], overrides: dict[str, str], runs: int = 3) -> dict:
    """The median run (by total self time) of ``runs`` fresh interpreters (``request``: the first request, or
    what makes a new one for each: a tick must name a slot of its own to run its job)."""
    source, signature = SOURCES[target]
    parsed = []
    for _ in range(runs):
        req = {"mark": MARK, "target": target, "source": str(ROOT / source), "signature": signature,
               **(request() if callable(request) else request)}
        done = subprocess.run([sys.executable, "-X", "importtime", "-c", _SCRIPT, json.dumps(req)], cwd=ROOT,
                              env={**os.environ, **production_env(target), **overrides},
                              capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            raise RuntimeError(f"{target}: {done.stderr[-2000:]}")
        status = json.loads(done.stdout.strip().splitlines()[-1])["status"]
        if not 200 <= status < 300:
            raise RuntimeError(f"{target}: first request answered {status}")
        parsed.append(parse(done.stderr))
    parsed.sort(key=lambda p: sum(p[ph]["self_ms"] for ph in PHASES))
    return parsed[len(parsed) // 2]


def markdown(target: str, result: dict, top: int = 8) -> str:
    lines = [f"**{target}**", "", "| phase | modules | import ms (self, summed) | largest packages (ms) |", "|---|---|---|---|"]
    for phase in PHASES:
        r = result[phase]
        largest = ", ".join(f"{k} {v:g}" for k, v in list(r["packages_ms"].items())[:top])
        lines.append(f"| {phase} | {r['modules']} | {r['self_ms']:g} | {largest} |")
    return "\n".join(lines)


def _requests(url: str, work: Path) -> dict[str, dict | Callable[[], dict]]:
    """A token and a patient (registered through the api in a process of its own), then each function's
    first request."""
    from bench.oru import EIGHT_OBX_PANEL, messages, push_body  # noqa: PLC0415
    from bench.runner import create_token  # noqa: PLC0415
    from bench.seed import sample_body  # noqa: PLC0415

    token = create_token(url, ["patients:read", "patients:write"])
    register = (
        "import json, sys, random\n"
        "from functions_framework import create_app\n"
        f"app = create_app(target='api', source={str(ROOT / 'functions/api/main.py')!r}, signature_type='http')\n"
        "r = app.test_client().post('/patients', json=json.loads(sys.argv[1]), headers={'Authorization': 'Bearer ' + sys.argv[2]})\n"
        "print(r.get_json()['id'])\n")
    body = sample_body(1, "Importtime", random.Random(1))
    body["communication"] = {"email": True, "sms": False}  # notify's first event sends its welcome e-mail (welcome_probe)
    done = subprocess.run([sys.executable, "-c", register, json.dumps(body), token], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env={**os.environ, **production_env("api"), "DATABASE_URL": url,
                                                       "DATA_DIR": str(work / "data")})
    if done.returncode != 0:
        raise RuntimeError(f"registering a patient failed: {done.stderr[-1500:]}")
    patient_id = done.stdout.strip().splitlines()[-1]
    raw = messages(1, f"I{uuid.uuid4().hex[:6].upper()}", patients=1, panel=EIGHT_OBX_PANEL)[0]
    push = json.dumps(push_body(raw, uuid.uuid4().hex, datetime.now(timezone.utc)))
    from shared.events import catalog  # noqa: PLC0415

    def binary(ce_type: str, data: dict) -> dict:
        return {"method": "POST", "path": "/", "body": json.dumps(data), "headers": {
            "ce-specversion": "1.0", "ce-id": uuid.uuid4().hex, "ce-source": "/bench/importtime", "ce-type": ce_type,
            "Content-Type": "application/json"}}

    def tick() -> dict:  # a PingSource tick of outbox-sweep, as the cold-start probe sends it, in a minute of its own
        from bench.coldstart import tick as tick_event  # noqa: PLC0415

        sent_at = datetime(2200, 1, 1, tzinfo=timezone.utc) + timedelta(minutes=random.randrange(500 * 365 * 24 * 60))
        headers, body = tick_event(sent_at)
        return {"method": "POST", "path": "/", "body": body.decode(), "headers": headers}

    return {
        "api": {"method": "GET", "path": f"/patients/{patient_id}", "body": None,
                "headers": {"Authorization": f"Bearer {token}"}},
        "lis_consumer": {"method": "POST", "path": "/", "body": push, "headers": {"Content-Type": "application/json"}},
        "notify": binary(catalog.PATIENT_REGISTERED, {"patient_id": patient_id, "version": 1, "origin": "api"}),
        "jobs": tick,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.importtime", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--functions", default=",".join(SOURCES))
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args(argv)
    import sqlalchemy as sa  # noqa: PLC0415

    from shared.migrate import migrate  # noqa: PLC0415
    from tests.support.database import admin_url, create_database, drop_database  # noqa: PLC0415

    compile_project()
    work = ROOT / "bench" / ".work" / ("importtime-" + time.strftime("%Y%m%d-%H%M%S"))
    work.mkdir(parents=True, exist_ok=True)
    admin = admin_url()
    url = create_database(admin, prefix="pmbench")
    results = {}
    try:
        engine = sa.create_engine(url)
        migrate(engine)
        engine.dispose()
        requests = _requests(url, work)
        overrides = {"DATABASE_URL": url, "DATA_DIR": str(work / "data")}
        for target in [t for t in args.functions.split(",") if t]:
            results[target] = measure(target, requests[target], overrides, args.runs)
            print(markdown(target, results[target]) + "\n", flush=True)
    finally:
        drop_database(admin, url)
    out = ROOT / "bench" / ".results" / "importtime.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"{out} written")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
