"""The birth-date lock every registration path takes: one key per date (that the SQL registration
sends the key, never the date, is tests/integration/registry/test_patient_sql.py's)."""

from __future__ import annotations

from datetime import date

from shared.services.duplicates import lock_key


def test_one_signed_64_bit_key_per_birth_date():
    keys = {lock_key(date(1961, 2, 3)), lock_key(date(1961, 2, 3))}
    assert len(keys) == 1 and -(2**63) <= keys.pop() < 2**63
    assert lock_key(date(1961, 2, 3)) != lock_key(date(1961, 2, 4))

