"""pg8000's date and timestamp columns read by Python's C ISO parser (issue 15).

pg8000 parses each ``date``, ``timestamp`` and ``timestamptz`` value with ``datetime.strptime``
(~4–8 µs each, in Python, under a lock); the server sends them in ISO format (DateStyle ISO, the
default), which ``date.fromisoformat`` / ``datetime.fromisoformat`` read in ~0.1 µs — a few
percent of a LIS message's CPU, whose patient and order rows carry several. Anything the ISO
parser refuses (``infinity``, BC dates, years beyond 9999) goes to pg8000's own function, so
every value reads as before.

`adapt` changes one connection's table (``shared.db.pool`` adapts each connection it opens, before
its first statement: a prepared statement keeps the functions of its columns).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any


def _iso(fast: Callable[[str], Any], original: Callable[[str], Any]) -> Callable[[str], Any]:
    def read(data: str) -> Any:
        try:
            return fast(data)
        except ValueError:
            return original(data)

    return read


_READERS: dict[int, Callable[[str], Any]] = {}


def adapt(con: Any) -> None:
    """The pg8000 connection `con` reads dates and timestamps with the ISO parser (idempotent)."""
    if not _READERS:
        import pg8000.converters as converters  # noqa: PLC0415

        table = converters.PG_TYPES
        _READERS.update({converters.DATE: _iso(date.fromisoformat, table[converters.DATE]),
                         converters.TIMESTAMP: _iso(datetime.fromisoformat, table[converters.TIMESTAMP]),
                         converters.TIMESTAMPTZ: _iso(datetime.fromisoformat, table[converters.TIMESTAMPTZ])})
    con.pg_types.update(_READERS)
