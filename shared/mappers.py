"""The lock between importing model modules and configuring SQLAlchemy's mappers (no SQLAlchemy here:
``shared.db``'s warm-up takes it before it has imported any model, ``shared.models`` as it imports one).

SQLAlchemy configures every class mapped so far, and a class configured half-way through its module's
import — ``Patient`` before ``PatientIdentifier``, its relationship's target, is defined — fails, a
failure SQLAlchemy keeps for the life of the process: every later ORM request of it answers 500. A
CloudEvent function (jobs, notify) configures in its warm-up thread once idle, while an event's handler
may be importing its first models in another (tests/integration/test_db_warm_up.py).
"""

from __future__ import annotations

import threading

MODEL_IMPORT_LOCK = threading.RLock()
"""Held while a model module is imported through ``shared.models`` (a name's first use, ``load_all``) and
while the warm-up configures the mappers (``shared.db``). Model modules import each other directly, inside
the import that holds it."""
