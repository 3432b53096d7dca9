"""The static half of the online-migration rules (docs/architecture.md, "Online migrations"):
``problems(source)`` lists what a revision's source does that would block writes on a table that
already holds data. ``tests/unit/test_migration_rules.py`` runs it on every revision after
``online.BASELINE``; the integration half (``tests/e2e/registry/test_online_migrations.py``)
applies them to 200,000 patients while registrations run.

A table the same revision creates is empty: its indexes and constraints may be built inline.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

VERSIONS_DIR = Path(__file__).resolve().parent / "versions"
_CONSTRAINT_OPS = {"create_check_constraint": 1, "create_foreign_key": 1, "create_unique_constraint": 1,
                   "create_primary_key": 1, "create_exclude_constraint": 1}
_INDEX_SQL = re.compile(r"\bCREATE\s+(?:UNIQUE\s+)?INDEX\s+(?!CONCURRENTLY\b)", re.IGNORECASE)
_ADD_COLUMN_SQL = re.compile(r"\bADD\s+COLUMN\b(?P<clause>[^,;]*)", re.IGNORECASE)
_ADD_CONSTRAINT_SQL = re.compile(r"\bADD\s+CONSTRAINT\b", re.IGNORECASE)


def _op_call(node: ast.Call) -> str | None:
    func = node.func
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "op":
        return func.attr
    return None


def _const(node: ast.expr | None) -> object:
    return node.value if isinstance(node, ast.Constant) else None


def _keyword(node: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in node.keywords if k.arg == name), None)


def _arg(node: ast.Call, index: int, name: str) -> object:
    if len(node.args) > index:
        return _const(node.args[index])
    return _const(_keyword(node, name))


def _sql_problems(text: str) -> list[str]:
    found = []
    if _INDEX_SQL.search(text):
        found.append("creates an index without CONCURRENTLY (use shared.migrations.online.create_index)")
    for match in _ADD_COLUMN_SQL.finditer(text):
        clause = match.group("clause").upper()
        if "NOT NULL" in clause and "DEFAULT" not in clause:
            found.append("adds a NOT NULL column without a default (add it nullable, backfill, then constrain)")
    parts = _ADD_CONSTRAINT_SQL.split(text)[1:]
    for clause in parts:
        upper = " ".join(clause.upper().split())
        if "NOT VALID" not in upper and "USING INDEX" not in upper:
            found.append("adds a constraint without NOT VALID (use online.add_check / online.add_foreign_key, then validate)")
    return found


def problems(source: str) -> list[str]:
    """What this revision's source does against the online rules (empty: nothing)."""
    tree = ast.parse(source)
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)]
    created = {_arg(c, 0, "table_name") for c in calls if _op_call(c) == "create_table"}
    found: list[str] = []
    for call in calls:
        name = _op_call(call)
        if name == "create_index":
            table = _arg(call, 1, "table_name")
            if table not in created and _const(_keyword(call, "postgresql_concurrently")) is not True:
                found.append(f"creates index {_arg(call, 0, 'index_name')} on {table} without CONCURRENTLY "
                             "(use shared.migrations.online.create_index)")
        elif name == "add_column":
            table = _arg(call, 0, "table_name")
            column = call.args[1] if len(call.args) > 1 else _keyword(call, "column")
            if table not in created and isinstance(column, ast.Call):
                not_null = _const(_keyword(column, "nullable")) is False or _const(_keyword(column, "primary_key")) is True
                if not_null and _keyword(column, "server_default") is None:
                    found.append(f"adds a NOT NULL column to {table} without a default (add it nullable, backfill, then constrain)")
        elif name in _CONSTRAINT_OPS:
            table = _arg(call, _CONSTRAINT_OPS[name], "table_name")
            if name == "create_foreign_key":
                table = _arg(call, 1, "source_table")
            if table not in created and _const(_keyword(call, "postgresql_not_valid")) is not True:
                found.append(f"{name} on {table} without NOT VALID (use online.add_check / online.add_foreign_key, "
                             "or a unique index built CONCURRENTLY)")
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            found += _sql_problems(node.value)
    return found


def revision_of(source: str) -> str | None:
    match = re.search(r'^revision\s*=\s*["\']([^"\']+)["\']', source, re.MULTILINE)
    return match.group(1) if match else None


def after_baseline(baseline: frozenset[str], versions_dir: Path = VERSIONS_DIR) -> dict[str, list[str]]:
    """{file name: problems} for every revision after the baseline."""
    result = {}
    for path in sorted(versions_dir.glob("*.py")):
        source = path.read_text()
        if revision_of(source) not in baseline:
            result[path.name] = problems(source)
    return result
