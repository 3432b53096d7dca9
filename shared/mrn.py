"""Medical record numbers: a database sequence (unique, never reused) plus a Luhn check digit."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shared.db import UnitOfWork

MRN_SYSTEM = "urn:patient-mgt:mrn"  # the identifier system of the MRN (shared.models.patients names it too)


def luhn_check_digit(digits: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def luhn_check_digit_sql(digits: str) -> str:
    """SQL for ``luhn_check_digit`` of the text expression ``digits`` (a scalar subquery): for a
    statement that takes the number from ``patient_mrn_seq`` itself (``services.patient_sql``'s
    registration). Written inline, not as a database function, so that code needs no migration
    before it runs. No ``%``: texts go through the driver's ``format`` paramstyle."""
    return (f"(SELECT mod(10 - mod(coalesce(sum(CASE WHEN mod(i, 2) = 1 THEN d * 2 - CASE WHEN d >= 5 THEN 9 ELSE 0 END "
            f"ELSE d END), 0), 10), 10)::text FROM (SELECT substr(reverse({digits}), i, 1)::int AS d, i "
            f"FROM generate_series(1, length({digits})) AS i) AS luhn)")


def is_valid_mrn(mrn: str) -> bool:
    return mrn.isdigit() and len(mrn) >= 2 and luhn_check_digit(mrn[:-1]) == mrn[-1]


def next_mrn(uow: UnitOfWork) -> str:
    import sqlalchemy as sa  # noqa: PLC0415

    number = uow.session.execute(sa.text("SELECT nextval('patient_mrn_seq')")).scalar_one()
    base = str(number)
    return base + luhn_check_digit(base)
