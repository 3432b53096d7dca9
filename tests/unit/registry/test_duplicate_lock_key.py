"""The birth-date lock every registration path takes: one key per date, and no birth date in SQL text
(a failed statement's text reaches PostgreSQL's log)."""

from __future__ import annotations

from datetime import date

from shared.services.duplicates import lock_key
from shared.services.patient_sql import _lock_and_mrn


def test_one_signed_64_bit_key_per_birth_date():
    keys = {lock_key(date(1961, 2, 3)), lock_key(date(1961, 2, 3))}
    assert len(keys) == 1 and -(2**63) <= keys.pop() < 2**63
    assert lock_key(date(1961, 2, 3)) != lock_key(date(1961, 2, 4))


def test_the_hot_path_statement_holds_the_key_not_the_date():
    text = _lock_and_mrn(date(1961, 2, 3))
    assert str(lock_key(date(1961, 2, 3))) in text
    assert "1961" not in text and "02-03" not in text
