"""The ``patient-mgt`` command: operator tasks (migrate, API keys) and the dev loop.

Output meant for people goes to stdout; a new API key's token is the last line of stdout so
scripts can capture it with ``tail -n 1``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

Handler = Callable[[argparse.Namespace], int]


def _migrate(args: argparse.Namespace) -> int:
    from shared.db import get_engine  # noqa: PLC0415
    from shared.migrate import migrate  # noqa: PLC0415

    applied = migrate(get_engine())
    print(f"applied {len(applied)} migration(s)" + (f": {', '.join(applied)}" if applied else "; already up to date"))
    return 0


def _apikey_create(args: argparse.Namespace) -> int:
    from shared.auth import create_api_key  # noqa: PLC0415
    from shared.db import unit_of_work  # noqa: PLC0415

    scopes = [s.strip() for s in args.scopes.split(",") if s.strip()]
    with unit_of_work() as uow:
        key, token = create_api_key(uow, args.name, scopes)
        print(f"created API key {key.name} ({key.id}) with scopes {','.join(key.scopes)}")
    print(token)
    return 0


def _apikey_list(args: argparse.Namespace) -> int:
    from shared.auth import list_api_keys  # noqa: PLC0415
    from shared.db import unit_of_work  # noqa: PLC0415

    with unit_of_work() as uow:
        for key in list_api_keys(uow):
            state = f"revoked {key.revoked_at.isoformat()}" if key.revoked_at else "active"
            print(f"{key.name}\t{key.token_prefix}…\t{','.join(key.scopes)}\t{key.created_at.isoformat()}\t{state}")
    return 0


def _apikey_revoke(args: argparse.Namespace) -> int:
    from shared.auth import revoke_api_key  # noqa: PLC0415
    from shared.db import unit_of_work  # noqa: PLC0415

    with unit_of_work() as uow:
        key = revoke_api_key(uow, args.name)
        print(f"revoked API key {key.name}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="patient-mgt", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("migrate", help="apply database migrations (safe to run twice and concurrently)").set_defaults(func=_migrate)

    apikey = sub.add_parser("apikey", help="manage API keys").add_subparsers(dest="apikey_command", required=True)
    create = apikey.add_parser("create", help="create a key; prints the token as the last line")
    create.add_argument("--name", required=True)
    create.add_argument("--scopes", required=True, help="comma-separated: patients:read,patients:write,lis:read,lis:admin,audit:read,metrics:read,admin")
    create.set_defaults(func=_apikey_create)
    apikey.add_parser("list", help="list keys (never their tokens)").set_defaults(func=_apikey_list)
    revoke = apikey.add_parser("revoke", help="revoke a key by name")
    revoke.add_argument("--name", required=True)
    revoke.set_defaults(func=_apikey_revoke)

    for register in _EXTENSIONS:
        register(sub)
    return parser


# Other modules add subcommands (dev runner, jobs, LIS tools) by appending a
# ``register(subparsers)`` callable here, keeping this module free of their imports.
_EXTENSIONS: list[Callable[[argparse._SubParsersAction], None]] = []


def _load_extensions() -> None:
    import importlib  # noqa: PLC0415

    for module in ("shared.cli.dev", "shared.cli.jobs", "shared.cli.lis", "shared.cli.events", "shared.cli.mllp"):
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            continue
        _EXTENSIONS.append(mod.register)


def main(argv: Sequence[str] | None = None) -> int:
    from shared.errors import DomainError  # noqa: PLC0415

    _load_extensions()
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except DomainError as error:
        print(f"error: {error.detail}", file=sys.stderr)
        for item in getattr(error, "errors", []) or []:
            print(f"  {item.get('field')}: {item.get('message')}", file=sys.stderr)
        return 2

