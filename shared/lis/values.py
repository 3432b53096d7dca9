"""Values from a LIS message made fit for the database, pure.

The parser hands over text as sent. Before it is stored: NUL characters go (PostgreSQL text
cannot hold them), over-long display text is cut to its column with a warning, and demographics
are validated the way the API validates them — a value that does not pass (a phone that is not
an international number, an impossible birth date) is not stored and the message carries a
warning naming the field. Nothing is guessed (no default country for phone numbers).
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from shared.hl7.model import PatientData
from shared.normalize import fold_key

EARLIEST_BIRTH_DATE = date(1890, 1, 1)
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
_PHONE_JUNK = re.compile(r"[\s().\-/]")


class Warnings(list[str]):
    """The PHI-free warning codes of one message (field names and codes, never values)."""

    def add(self, code: str) -> None:
        code = safe_text(code)[:200]
        if code not in self and len(self) < 50:
            self.append(code)


def safe_text(value: str) -> str:
    """Text PostgreSQL accepts: no NUL characters, no lone surrogates (both become U+FFFD)."""
    value = value.replace("\x00", "\ufffd")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = value.encode("utf-8", "replace").decode("utf-8")
    return value


def clean(value: str | None, limit: int, warnings: Warnings | None = None, where: str = "") -> str | None:
    """Safe text (`safe_text`), stripped, cut to `limit` characters (with a ``truncated:<where>`` warning)."""
    if value is None:
        return None
    value = safe_text(value).strip()
    if not value:
        return None
    if len(value) > limit:
        if warnings is not None:
            warnings.add(f"truncated:{where}")
        value = value[:limit]
    return value


def e164(raw: str | None) -> str | None:
    """+CC… or 00CC… as E.164; None for anything without an explicit country code."""
    if not raw:
        return None
    compact = _PHONE_JUNK.sub("", raw)
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    if re.fullmatch(r"\+[1-9]\d{6,14}", compact):
        return compact
    return None


def email(raw: str | None) -> str | None:
    if not raw:
        return None
    value = raw.strip().lower()
    if value.startswith("mailto:"):
        value = value[7:]
    return value if len(value) <= 254 and _EMAIL.match(value) else None


def birth_date(value: date | None, today: date | None = None) -> date | None:
    if value is None:
        return None
    today = today or date.today()
    return value if EARLIEST_BIRTH_DATE <= value <= today else None


def demographics(patient: PatientData, warnings: Warnings) -> dict[str, Any]:
    """The demographic fields a PID asserts: name, birth_date, sex, address, phone, email.

    A field is None when the message did not carry a usable value (then it is left alone).
    """
    for name in patient.invalid_fields:
        warnings.add(f"invalid:{name}")
    name = None
    if patient.name is not None:
        family = clean(patient.name.family, 200, warnings, "PID-5") or ""
        given = [g for g in (clean(x, 200, warnings, "PID-5") for x in patient.name.given[:10]) if g]
        if given and not family:
            # A name without its family name is not applied: it would blank the one on record.
            warnings.add("incomplete:PID-5")
        if family:
            name = {
                "family": family,
                "given": given,
                "prefix": [p for p in (clean(x, 100, warnings, "PID-5") for x in patient.name.prefix[:5]) if p],
                "suffix": [s for s in (clean(x, 100, warnings, "PID-5") for x in patient.name.suffix[:5]) if s],
            }
    born = birth_date(patient.birth_date)
    if patient.birth_date is not None and born is None:
        warnings.add("out_of_range:PID-7")
    phone = e164(patient.phone)
    if patient.phone and phone is None:
        warnings.add("not_e164:PID-13")
    mail = email(patient.email)
    if patient.email and mail is None:
        warnings.add("invalid:PID-13-email")
    address = None
    if patient.address is not None:
        a = patient.address
        address = {
            "line": [x for x in (clean(v, 200, warnings, "PID-11") for v in a.line[:5]) if x],
            "city": clean(a.city, 100, warnings, "PID-11"),
            "state": clean(a.state, 100, warnings, "PID-11"),
            "postal_code": clean(a.postal_code, 20, warnings, "PID-11"),
            "country": clean(a.country, 100, warnings, "PID-11"),
        }
        if not any(address.values()):
            address = None
    return {
        "name": name,
        "birth_date": born.isoformat() if born else None,
        # "unknown" (PID-8 U) says nothing: it never replaces a sex on record.
        "sex": patient.sex if patient.sex != "unknown" else None,
        "address": address,
        "phone": phone,
        "email": mail,
    }


def patient_columns(fields: dict[str, Any]) -> dict[str, Any]:
    """Demographic fields (as `demographics` returns them) -> `patients` column values."""
    columns: dict[str, Any] = {}
    for key, value in fields.items():
        if key == "name":
            columns.update(
                family=value["family"], given=value["given"], prefix=value["prefix"], suffix=value["suffix"],
                family_norm=fold_key(value["family"]),
                first_given_norm=fold_key(value["given"][0]) if value["given"] else "",
            )
        elif key == "birth_date":
            columns["birth_date"] = date.fromisoformat(value)
        else:
            columns[key] = value
    return columns


def current_demographics(row: Any) -> dict[str, Any]:
    """A `patients` row in the shape `demographics` returns, for comparison."""
    return {
        "name": {"family": row.family, "given": list(row.given or []), "prefix": list(row.prefix or []),
                 "suffix": list(row.suffix or [])},
        "birth_date": row.birth_date.isoformat() if row.birth_date else None,
        "sex": row.sex,
        "address": row.address,
        "phone": row.phone,
        "email": row.email,
    }
