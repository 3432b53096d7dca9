"""The name-search index (``patient_name_tokens``): folded words of the family and given names.

``name_tokens`` is pure; ``index_names`` rewrites a patient's rows and is called in the same
transaction as every write of ``family``/``given`` (registration, update). Anything else that
changes a patient's names (the LIS feed) must call it too, or the patient is not found by name.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING

from shared.normalize import fold, tokens

if TYPE_CHECKING:
    from shared.db import UnitOfWork

MAX_TOKEN = 200


def name_tokens(family: str, given: Iterable[str]) -> set[tuple[str, str]]:
    """{(kind, token)}: every folded word, plus each whole folded name when it has several words.

    'García-López', ['Jean Pierre'] → family: garcia, lopez, garcialopez; given: jean, pierre, jeanpierre.
    """
    out: set[tuple[str, str]] = set()
    for kind, names in (("family", [family]), ("given", list(given))):
        for name in names:
            words = tokens(name)
            out.update((kind, w[:MAX_TOKEN]) for w in words)
            whole = fold(name)
            if whole and len(words) > 1:
                out.add((kind, whole[:MAX_TOKEN]))
    return out


def index_names(uow: UnitOfWork, patient_id: uuid.UUID, family: str, given: Iterable[str]) -> None:
    """Replace the patient's name tokens (same transaction as the name change)."""
    import sqlalchemy as sa  # noqa: PLC0415 — `name_tokens` alone loads no SQLAlchemy (the LIS fast path's)
    from sqlalchemy.dialects.postgresql import insert as pg_insert  # noqa: PLC0415

    from shared.models import PatientNameToken  # noqa: PLC0415

    uow.session.execute(sa.delete(PatientNameToken).where(PatientNameToken.patient_id == patient_id))
    rows = [{"patient_id": patient_id, "kind": kind, "token": token} for kind, token in sorted(name_tokens(family, given))]
    if rows:
        uow.session.execute(pg_insert(PatientNameToken).values(rows).on_conflict_do_nothing())
