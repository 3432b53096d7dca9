"""The reasons the API documents for a probable duplicate are the rules' own, in their order."""

from __future__ import annotations

from typing import get_args

from shared.schemas.merge import DuplicateReason
from shared.services.duplicates import REASONS, RULES


def test_the_schemas_reasons_are_the_rules_reasons_in_order() -> None:
    assert get_args(DuplicateReason) == REASONS == tuple(rule.reason for rule in RULES)
