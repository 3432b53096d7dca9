"""``patient-mgt mllp``: the MLLP listener (HL7 v2 over TCP → the LIS topic; shared/mllp)."""

from __future__ import annotations

import argparse


def _mllp(args: argparse.Namespace) -> int:
    from shared.mllp.__main__ import main  # noqa: PLC0415

    return main()


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "mllp", help="run the MLLP listener: HL7 v2 frames → Pub/Sub (MLLP_* settings), ACK once stored"
    )
    parser.set_defaults(func=_mllp)
