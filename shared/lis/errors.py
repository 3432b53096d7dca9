"""Outcomes of applying a LIS message that are not "processed", as exceptions raised inside its savepoint.

Both carry a short PHI-free code only.
"""

from __future__ import annotations


class Quarantine(Exception):
    """The message can never be applied as it is (or not without an operator's action first):
    its writes are rolled back, it is stored as ``quarantined`` with `reason`, and answered 2xx."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason[:200]


class ConcurrentChange(Exception):
    """Another transaction changed the same rows first (it won a unique key): retry the delivery."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
