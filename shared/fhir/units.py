"""Lab values as FHIR data types: numbers, units as UCUM where we know the unit, ranges.

Units are mapped only through the table below (the spellings lab feeds send for common units,
compared case-insensitively); a unit not in it keeps its text as ``Quantity.unit`` with no UCUM
code, and a value without a unit gets none — a unit is never guessed.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from shared.fhir.systems import UCUM

# spelling → UCUM code. Spellings that are already UCUM map to themselves.
_UCUM: dict[str, str] = {}
for code, spellings in {
    "mg/dL": ("mg/dL", "mg/dl", "mg%"),
    "g/dL": ("g/dL", "g/dl", "gm/dL", "gm/dl"),
    "g/L": ("g/L", "g/l"),
    "mg/L": ("mg/L", "mg/l"),
    "ug/L": ("ug/L", "µg/L", "μg/L", "mcg/L"),
    "ug/dL": ("ug/dL", "µg/dL", "μg/dL", "mcg/dL"),
    "ug/mL": ("ug/mL", "µg/mL", "μg/mL", "mcg/mL"),
    "ng/mL": ("ng/mL", "ng/ml"),
    "ng/dL": ("ng/dL", "ng/dl"),
    "pg/mL": ("pg/mL", "pg/ml"),
    "mmol/L": ("mmol/L", "mmol/l"),
    "umol/L": ("umol/L", "µmol/L", "μmol/L"),
    "nmol/L": ("nmol/L", "nmol/l"),
    "pmol/L": ("pmol/L", "pmol/l"),
    "meq/L": ("meq/L", "mEq/L"),
    "mosm/kg": ("mosm/kg", "mOsm/kg", "mOsm/kg H2O"),
    "U/L": ("U/L", "u/l"),
    "[IU]/L": ("[IU]/L", "IU/L"),
    "m[IU]/L": ("m[IU]/L", "mIU/L"),
    "m[IU]/mL": ("m[IU]/mL", "mIU/mL"),
    "u[IU]/mL": ("u[IU]/mL", "uIU/mL", "µIU/mL", "μIU/mL"),
    "k[IU]/L": ("k[IU]/L", "kIU/L"),
    "%": ("%",),
    "fL": ("fL", "fl"),
    "pg": ("pg",),
    "g": ("g",),
    "mg": ("mg",),
    "kg": ("kg",),
    "L": ("L",),
    "mL": ("mL", "ml"),
    "s": ("s", "sec", "secs", "second", "seconds"),
    "min": ("min",),
    "h": ("h", "hr"),
    "mm/h": ("mm/h", "mm/hr"),
    "mm[Hg]": ("mm[Hg]", "mmHg"),
    "10*3/uL": ("10*3/uL", "10^3/uL", "x10E3/uL", "x10^3/uL", "10*3/µL", "10^3/µL", "K/uL", "K/µL", "thou/uL"),
    "10*6/uL": ("10*6/uL", "10^6/uL", "x10E6/uL", "x10^6/uL", "10*6/µL", "10^6/µL", "M/uL", "M/µL", "mill/uL"),
    "10*9/L": ("10*9/L", "10^9/L", "x10E9/L", "x10^9/L", "x10*9/L"),
    "10*12/L": ("10*12/L", "10^12/L", "x10E12/L", "x10^12/L", "x10*12/L"),
    "/uL": ("/uL", "/µL", "cells/uL", "cells/µL"),
    "mL/min/{1.73_m2}": ("mL/min/{1.73_m2}", "mL/min/1.73m2", "mL/min/1.73 m2", "ml/min/1.73m2"),
    "{INR}": ("{INR}", "INR"),
    "{ratio}": ("{ratio}", "ratio"),
}.items():
    for spelling in spellings:
        _UCUM[spelling.casefold()] = code

# HL7 v2 NM: optional sign, digits, optional decimal point ("+.5", "007", "5." are all numbers).
_NUMBER = re.compile(r"^[+-]?(?:\d+\.?\d*|\.\d+)$")
_COMPARATOR = re.compile(r"^(<=|>=|<|>)\s*([+-]?(?:\d+\.?\d*|\.\d+))$")
_RATIO = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+))\s*[:/]\s*([+-]?(?:\d+\.?\d*|\.\d+))$")
_RANGE = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+))\s*-\s*([+-]?(?:\d+\.?\d*|\.\d+))$")


def ucum(units: str | None) -> str | None:
    """The UCUM code for a unit as a lab feed spells it, or None when we do not know it."""
    if not units:
        return None
    return _UCUM.get(units.strip().casefold())


def number(text: str | None) -> Decimal | None:
    """An HL7 NM as a decimal with its digits (``"5.10"`` stays 5.10), or None."""
    if text is None or not _NUMBER.match(text.strip()):
        return None
    return _decimal(text.strip())


def _decimal(text: str) -> Decimal:
    value = Decimal(text)
    return value + 0 if value == 0 else value  # "-0" is 0


def quantity(value: Decimal, units: str | None, comparator: str | None = None) -> dict[str, Any]:
    q: dict[str, Any] = {"value": value}
    if comparator:
        q["comparator"] = comparator
    if units:
        q["unit"] = units
        code = ucum(units)
        if code:
            q["system"], q["code"] = UCUM, code
    return q


_SN = re.compile(r"^(<=|>=|<>|<|>|=)?\s*(.+)$")


def _structured_numeric(text: str, units: str | None) -> dict[str, Any] | None:
    """An SN written out (comparator, number, separator, number): ``=4.2`` and ``4.2`` are a plain
    Quantity, ``>90`` one with its comparator, ``1:128`` (``>1:128``) a Ratio (comparator on the
    numerator), ``2-5`` a Range. ``<>`` (not equal) and anything else have no FHIR number shape."""
    m = _SN.match(text)
    if not m or m.group(1) == "<>":
        return None
    comparator = m.group(1) if m.group(1) != "=" else None
    body = m.group(2).strip()
    if (n := number(body)) is not None:
        return {"valueQuantity": quantity(n, units, comparator)}
    if ratio := _RATIO.match(body):
        numerator: dict[str, Any] = {"value": _decimal(ratio.group(1))}
        if comparator:
            numerator["comparator"] = comparator
        return {"valueRatio": {"numerator": numerator, "denominator": {"value": _decimal(ratio.group(2))}}}
    if comparator is None and (bounds := _RANGE.match(body)):
        return {"valueRange": {"low": quantity(_decimal(bounds.group(1)), units),
                               "high": quantity(_decimal(bounds.group(2)), units)}}
    return None


def value_element(value_type: str | None, value: str | None, units: str | None) -> dict[str, Any]:
    """``{"valueQuantity": …}``, ``{"valueRatio": …}``, ``{"valueRange": …}`` or ``{"valueString": …}``.

    NM → Quantity; SN → Quantity with a comparator, Ratio or
    Range as written out by the HL7 layer (``>90``, ``1:128``, ``2-5``); anything else, or a
    number that does not parse, stays text.
    """
    if value is None:
        return {}
    text = value.strip()
    kind = (value_type or "").upper()
    if kind in ("NM", "SN"):
        if (n := number(text)) is not None:
            return {"valueQuantity": quantity(n, units)}
    if kind == "SN" and (sn := _structured_numeric(text, units)):
        return sn
    return {"valueString": value}


def reference_range(text: str | None, units: str | None) -> dict[str, Any] | None:
    """OBX-7 as a referenceRange: ``low-high`` and ``>=low`` / ``<=high`` give quantities (with
    the result's units); the text as sent is always kept (``>60``, ``negative``…)."""
    if not text:
        return None
    rng: dict[str, Any] = {}
    stripped = text.strip()
    if m := _RANGE.match(stripped):
        rng["low"] = quantity(_decimal(m.group(1)), units)
        rng["high"] = quantity(_decimal(m.group(2)), units)
    elif (m := _COMPARATOR.match(stripped)) and m.group(1) in (">=", "<="):
        rng["low" if m.group(1) == ">=" else "high"] = quantity(_decimal(m.group(2)), units)
    rng["text"] = text
    return rng
