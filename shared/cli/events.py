"""``patient-mgt events ...``: the event catalog docs and dead letters from the command line."""

from __future__ import annotations

import argparse
import sys


def _docs(args: argparse.Namespace) -> int:
    from shared.events import docs  # noqa: PLC0415
    from shared.settings import PROJECT_ROOT  # noqa: PLC0415

    if args.check:
        stale = docs.stale()
        for path in stale:
            print(f"stale: {path.relative_to(PROJECT_ROOT)}", file=sys.stderr)
        if stale:
            print("run: patient-mgt events docs", file=sys.stderr)
        return 1 if stale else 0
    changed = docs.write()
    for path in changed:
        print(f"wrote {path.relative_to(PROJECT_ROOT)}")
    if not changed:
        print("docs/events.md and docs/events/schemas/ are up to date")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    events = sub.add_parser("events", help="event catalog tools").add_subparsers(dest="events_command", required=True)
    docs = events.add_parser("docs", help="regenerate docs/events.md and docs/events/schemas/*.json from the catalog")
    docs.add_argument("--check", action="store_true", help="only report stale files (exit 1 when any)")
    docs.set_defaults(func=_docs)
