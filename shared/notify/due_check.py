"""Whether the ``notifications-due`` job has anything to do: SQL text on the driver pool, no SQLAlchemy.

The job ticks every minute and mostly finds nothing: no claim past its lease to expire, no row
``scheduled`` or ``pending`` whose time has come. A jobs instance woken from zero by such a tick should
not load SQLAlchemy, the models and the notify store only to find that out. `anything_due` asks both of
``shared.notify.due.send_due_notifications``'s questions in one statement (``store.expire_stale_claims``'
and ``store.lock_next_due``'s conditions, on their partial indexes); when either holds, the job runs
``send_due_notifications`` as before.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from shared.db import driver_connection, wire

_ANYTHING_DUE = (
    "SELECT EXISTS (SELECT 1 FROM notifications WHERE status = 'sending' AND claimed_at < %s::timestamptz) "
    "OR EXISTS (SELECT 1 FROM notifications WHERE status IN ('scheduled', 'pending') AND send_after <= %s::timestamptz)"
)


def anything_due(now: datetime, lease: timedelta) -> bool:
    """Whether a claim is older than ``lease`` or a waiting row's ``send_after`` has come (one statement)."""
    with driver_connection() as con:  # autocommit: one read
        return bool(wire.rows(con, _ANYTHING_DUE, (now - lease, now), prepared=True)[0][0])
