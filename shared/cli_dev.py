"""``patient-mgt dev``: run the whole system locally (see shared.devrun)."""

from __future__ import annotations

import argparse


def _dev(args: argparse.Namespace) -> int:
    from shared.devrun import run  # noqa: PLC0415

    return run(reload=not args.no_reload)


def register(sub: argparse._SubParsersAction) -> None:
    dev = sub.add_parser("dev", help="run every function locally on 127.0.0.1:8080-8083")
    dev.add_argument("--no-reload", action="store_true", help="do not restart on code change")
    dev.set_defaults(func=_dev)
