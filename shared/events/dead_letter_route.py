"""Which deliveries to the jobs function are dead letters (``shared.events.dead_letters`` stores them).

Asked of every event the jobs function receives, so it stays apart from the store: a PingSource
tick or a broker event answers it without loading the dead-letter model, the audit trail and the
re-drive code (cold start).
"""

from __future__ import annotations

from typing import Any

DEAD_LETTER_PATH = "/dead-letter"
KNATIVE_ERROR_EXTENSIONS = ("knativeerrorcode", "knativeerrordata", "knativeerrordest")


def is_dead_letter(attributes: dict[str, Any], path: str | None) -> bool:
    """A delivery to the dead-letter path, or an event carrying Knative's error extensions."""
    if path is not None and (path == DEAD_LETTER_PATH or path.startswith(DEAD_LETTER_PATH + "/")):
        return True
    return any(name in attributes for name in KNATIVE_ERROR_EXTENSIONS)
