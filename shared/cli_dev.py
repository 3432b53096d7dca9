"""``patient-mgt dev``: run the whole system locally (see shared.devrun)."""

from __future__ import annotations

import argparse


def _dev(args: argparse.Namespace) -> int:
    from shared.devrun import run, stop_everything  # noqa: PLC0415

    if args.stop:
        return stop_everything()
    return run(reload=not args.no_reload, emulator=not args.no_emulator, pingsources=not args.no_pingsources)


def register(sub: argparse._SubParsersAction) -> None:
    dev = sub.add_parser("dev", help="run every function, the event router and the Pub/Sub emulator on 127.0.0.1")
    dev.add_argument("--no-reload", action="store_true", help="do not restart on code change")
    dev.add_argument("--no-emulator", action="store_true", help="do not start the Pub/Sub emulator even if installed")
    dev.add_argument("--no-pingsources", action="store_true", help="do not fire the PingSources (cron jobs)")
    dev.add_argument("--stop", action="store_true",
                     help="stop a running `make dev`, anything a killed one left, and the embedded PostgreSQL (`make dev-stop`)")
    dev.set_defaults(func=_dev)
