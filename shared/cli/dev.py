"""``patient-mgt dev``: run the whole system locally (see shared.devtools.devrun)."""

from __future__ import annotations

import argparse
import sys

# flag -> the process whose port it moves (shared.devtools.devrun.OFFSETS)
PORT_FLAGS = {"--api-port": "api", "--lis-consumer-port": "lis_consumer", "--notify-port": "notify",
              "--jobs-port": "jobs", "--router-port": "router", "--emulator-port": "pubsub-emulator",
              "--mllp-port": "mllp"}


def _dev(args: argparse.Namespace) -> int:
    from shared.devtools.devrun import PortsInUse, dev_ports, run, stop_everything  # noqa: PLC0415
    from shared.settings import get_settings  # noqa: PLC0415

    if args.stop:
        return stop_everything()
    base = args.port_base or get_settings().dev_port_base
    ports = dev_ports(base, **{name.replace("-", "_"): getattr(args, flag[2:].replace("-", "_"))
                               for flag, name in PORT_FLAGS.items()})
    try:
        return run(reload=not args.no_reload, emulator=not args.no_emulator, pingsources=not args.no_pingsources,
                   ports=ports)
    except PortsInUse as taken:
        print(f"[dev] {taken}", file=sys.stderr, flush=True)
        return 1


def _port(text: str) -> int:
    port = int(text)
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a TCP port")
    return port


def register(sub: argparse._SubParsersAction) -> None:
    dev = sub.add_parser("dev", help="run every function, the event router and the Pub/Sub emulator on 127.0.0.1")
    dev.add_argument("--no-reload", action="store_true", help="do not restart on code change")
    dev.add_argument("--no-emulator", action="store_true", help="do not start the Pub/Sub emulator even if installed")
    dev.add_argument("--no-pingsources", action="store_true", help="do not fire the PingSources (cron jobs)")
    dev.add_argument("--stop", action="store_true",
                     help="stop a running `make dev`, anything a killed one left, and the embedded PostgreSQL (`make dev-stop`)")
    dev.add_argument("--port-base", type=_port, metavar="PORT",
                     help="api on PORT, lis_consumer/notify/jobs on the next three, emulator +5, router +10 "
                     "(default: DEV_PORT_BASE, 8080)")
    for flag, name in PORT_FLAGS.items():
        dev.add_argument(flag, type=_port, metavar="PORT", help=f"the {name} port (overrides --port-base)")
    dev.set_defaults(func=_dev)
