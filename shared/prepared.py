"""Statements in one round trip each, through SQLAlchemy (issue 15).

pg8000 sends an unnamed statement in three exchanges with the server (Parse; Describe and Bind;
Execute), and starts a transaction with a ``BEGIN`` of its own exchange. A statement executed with
one of these options goes through SQLAlchemy as usual (its events, its error handling in
``shared.db.orm``, the connection it is given) but reaches the server as ``shared.db.wire`` sends it,
in one exchange:

* ``PREPARED``: a named statement prepared on the connection the first time its text is seen (kept
  with the connection, so a discarded connection takes its statements along), then
  Bind/Execute/Sync — no parsing or planning per execution. For fixed texts whose generic plan is
  as good as a custom one (keys compared by equality).
* ``PIPELINED``: an unnamed statement as Parse, Bind, Describe, Execute and Sync in one write, planned
  at Bind with the values (a custom plan, always): for texts that vary or want their values' plan.

When the connection is in no transaction yet (and not in driver autocommit), the ``BEGIN`` pg8000
would send by itself rides in the same write, ahead of the statement. The driver pool's hot paths
(``shared.services.patient_sql``) call ``shared.db.wire`` directly; the statements prepared on a
connection are the same whichever way they came.

`install` adds the ``do_execute`` hook to an engine (once); statements without the options run as
pg8000 runs them. Importing this module loads no SQLAlchemy (the options are plain dicts).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

PREPARED = {"patient_sql_prepared": True}
PIPELINED = {"patient_sql_pipelined": True}
_install_lock = threading.Lock()


def install(engine: Engine) -> None:
    """The engine's ``do_execute`` hook for `PREPARED` and `PIPELINED` (idempotent)."""
    from sqlalchemy import event  # noqa: PLC0415

    if event.contains(engine, "do_execute", _do_execute):
        return
    with _install_lock:
        if not event.contains(engine, "do_execute", _do_execute):
            event.listen(engine, "do_execute", _do_execute)


def _do_execute(cursor: Any, statement: str, parameters: Any, context: Any) -> bool:
    """SQLAlchemy's ``do_execute`` hook (see the module's docstring); False: pg8000 as usual.
    Errors leave as pg8000's cursor raises them (``shared.db.wire``), through SQLAlchemy's handling."""
    options = context.execution_options
    pipelined = options.get("patient_sql_pipelined", False)
    if not (pipelined or options.get("patient_sql_prepared")):
        return False
    from shared.db import wire  # noqa: PLC0415

    result = wire.execute(cursor._c, statement, parameters, prepared=not pipelined, pipelined=pipelined)
    cursor._context, cursor._row_iter = result, iter(result.rows or [])
    return True
