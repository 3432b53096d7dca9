"""Counting the statements a piece of code sends, as issue 15's statement budgets are measured
(``bench.anatomy``: statements apart from transaction control, and every wait for the server's answer)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from bench.anatomy import count_statements, stop_counting


@contextmanager
def counting() -> Iterator[dict[str, int]]:
    """Statements and round trips while the block runs, and how many simple-protocol queries ran on a
    connection of the process's pool (``shared.db.pool``)."""
    import pg8000.core  # noqa: PLC0415

    from shared.db.pool import get_pool  # noqa: PLC0415

    counter = {"statements": 0, "round_trips": 0, "on_the_pool": 0}
    pool = get_pool()
    count_statements(counter)  # patches pg8000 (once per process) before the wrapper below takes its method
    original = pg8000.core.CoreConnection.execute_simple

    def on_the_pool(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        if getattr(self, "_pool", None) is pool:
            counter["on_the_pool"] += 1
        return original(self, *args, **kwargs)

    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(pg8000.core.CoreConnection, "execute_simple", on_the_pool)
            yield counter
    finally:
        stop_counting()


@contextmanager
def through_sqlalchemy() -> Iterator[list[str]]:
    """The statements the process's SQLAlchemy engine executes while the block runs (code on the
    driver pool sends none through it)."""
    import sqlalchemy as sa  # noqa: PLC0415

    from shared.db import get_engine  # noqa: PLC0415

    engine = get_engine()
    seen: list[str] = []

    def executed(_conn, _cursor, statement, *_rest) -> None:  # noqa: ANN001, ANN002
        seen.append(statement)

    sa.event.listen(engine, "before_cursor_execute", executed)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", executed)
