"""``python -m shared.devtools.devrouter --port 8090 --service notify=http://127.0.0.1:8082 ...``"""

from __future__ import annotations

import argparse
import signal
import threading
from pathlib import Path

from shared.devtools.devrouter.manifests import KNATIVE_DIR, load
from shared.devtools.devrouter.router import Router, serve
from shared.log import get_logger

log = get_logger("patient_mgt.devrouter")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.devtools.devrouter", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--manifests", type=Path, default=KNATIVE_DIR, help="folder holding the Knative YAML")
    parser.add_argument("--service", action="append", default=[], metavar="NAME=URL",
                        help="where a Knative Service runs locally (repeat per Service)")
    parser.add_argument("--backoff-scale", type=float, default=1.0, help="multiply every retry backoff (0.01: fast local loops)")
    parser.add_argument("--no-pingsources", action="store_true", help="do not fire the PingSources on their schedules")
    args = parser.parse_args(argv)
    services = dict(item.split("=", 1) for item in args.service)
    manifests = load(args.manifests)
    router = Router(manifests, services, backoff_scale=args.backoff_scale, pingsources=not args.no_pingsources)
    server = serve(router, args.host, args.port)
    log.info("dev router listening", extra={"fields": {
        "url": f"http://{args.host}:{server.server_port}", "triggers": len(manifests.triggers),
        "pingsources": 0 if args.no_pingsources else len(manifests.pingsources), "services": sorted(services)}})
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    server.shutdown()
    router.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
