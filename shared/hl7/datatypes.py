"""HL7 composite data types (CX, XPN, XAD, XTN, CE/CWE, SN, ...) -> model values.

Each function reads one repetition (`Rep`) and returns a model value or None; none of them
raises. Which field to read, and the fall-backs between fields, belong to `mapping`.
"""

from __future__ import annotations

from .model import Address, CodedValue, Identifier, PersonName
from .segments import Rep

__all__ = [
    "CODED_TYPES",
    "TEXT_TYPES",
    "address",
    "coded_value",
    "email",
    "entity_identifier",
    "identifier",
    "person_name",
    "phone",
    "priority",
    "render_value",
    "sex",
    "sub_coded_value",
    "sub_entity_identifier",
]

CODED_TYPES = frozenset({"CE", "CWE", "CNE", "CF"})
TEXT_TYPES = frozenset({"TX", "FT"})

_SEX = {"M": "male", "F": "female", "O": "other", "U": "unknown", "A": "other", "N": "other"}
_SEX_WORDS = {"MALE": "male", "FEMALE": "female", "OTHER": "other", "UNKNOWN": "unknown"}
_PRIORITY = {"S": "stat", "A": "asap", "R": "routine", "STAT": "stat", "ASAP": "asap", "ROUTINE": "routine"}
_EMAIL_USE = "NET"
_EMAIL_EQUIPMENT = frozenset({"INTERNET", "X.400"})


def identifier(rep: Rep, fallback_system: str) -> Identifier | None:
    """CX: value CX-1; system CX-4.1, else CX-4.2, else `fallback_system`; type CX-5."""
    value = rep.component(1)
    if value is None:
        return None
    system = rep.sub(4, 1) or rep.sub(4, 2) or fallback_system
    return Identifier(value=value, system=system, type=rep.component(5))


def person_name(rep: Rep) -> PersonName | None:
    """XPN: family (first subcomponent of XPN-1), given + middle, suffix + degree, prefix."""
    family = rep.sub(1, 1)
    given = tuple(part for part in (rep.component(2), rep.component(3)) if part)
    suffix = tuple(part for part in (rep.component(4), rep.component(6)) if part)
    prefix = tuple(part for part in (rep.component(5),) if part)
    if family is None and not given and not suffix and not prefix:
        return None
    return PersonName(family=family, given=given, prefix=prefix, suffix=suffix)


def address(rep: Rep) -> Address | None:
    """XAD: street (first subcomponent of XAD-1) and other designation are the lines."""
    line = tuple(part for part in (rep.sub(1, 1), rep.component(2)) if part)
    city, state, postal, country = (rep.component(i) for i in (3, 4, 5, 6))
    if not line and city is None and state is None and postal is None and country is None:
        return None
    return Address(line=line, city=city, state=state, postal_code=postal, country=country)


def _is_email(rep: Rep) -> bool:
    use = (rep.component(2) or "").upper()
    equipment = (rep.component(3) or "").upper()
    return use == _EMAIL_USE or equipment in _EMAIL_EQUIPMENT


def phone(rep: Rep) -> str | None:
    """XTN number: XTN-1 as written, else area code + local number (XTN-6, XTN-7), else XTN-12.

    Repetitions that are e-mail addresses (XTN-2 NET or XTN-3 Internet/X.400) have no number.
    """
    if _is_email(rep):
        return None
    written = rep.component(1)
    if written:
        return written
    local = rep.component(7)
    if local:
        return (rep.component(6) or "") + local
    return rep.component(12)


def email(rep: Rep) -> str | None:
    """XTN e-mail: XTN-4 (or XTN-1 when a sender put it there) of an e-mail repetition."""
    if not _is_email(rep):
        return None
    return rep.component(4) or rep.component(1)


def entity_identifier(rep: Rep) -> tuple[str | None, str | None]:
    """EI: (the number, EI-1; its namespace, EI-2 namespace id, else EI-3 universal id)."""
    number = rep.component(1)
    if number is None:
        return None, None
    return number, rep.component(2) or rep.component(3)


def sub_entity_identifier(rep: Rep, component: int) -> tuple[str | None, str | None]:
    """An EI written as the subcomponents of one component (EIP, PRL): number&namespace&universal id."""
    number = rep.sub(component, 1)
    if number is None:
        return None, None
    return number, rep.sub(component, 2) or rep.sub(component, 3)


def sub_coded_value(rep: Rep, component: int) -> CodedValue | None:
    """A CWE written as the subcomponents of one component (PRL-1): code&text&system."""
    code, display, system = (rep.sub(component, j) for j in (1, 2, 3))
    if code is None and display is None:
        return None
    return CodedValue(code=code, display=display, system=system)


def coded_value(rep: Rep) -> CodedValue:
    """CE/CWE: identifier^text^system, the alternate triplet (4-6) when the primary is empty.

    The display falls back to CWE-9 (original text), which some senders use alone.
    """
    code, display, system = rep.component(1), rep.component(2), rep.component(3)
    if code is None and display is None:
        code, display, system = rep.component(4), rep.component(5), rep.component(6)
    if display is None:
        display = rep.component(9)
    return CodedValue(code=code, display=display, system=system)


def _structured_numeric(rep: Rep) -> str | None:
    """SN written out: comparator, number, separator/suffix, number (``<^0.5`` -> ``<0.5``)."""
    parts = [rep.component(i) or "" for i in (1, 2, 3, 4)]
    return "".join(parts) or None


def render_value(rep: Rep, value_type: str | None) -> tuple[str | None, CodedValue | None]:
    """One OBX-5 repetition as (text, structured code for coded types)."""
    if value_type == "SN":
        return _structured_numeric(rep), None
    if value_type in CODED_TYPES:
        coded = coded_value(rep)
        if coded.code is None and coded.display is None and coded.system is None:
            return None, None
        return coded.display or coded.code, coded
    if value_type in TEXT_TYPES:
        return rep.text() or None, None
    return rep.value(), None


def sex(code: str | None) -> str | None:
    """HL7 table 0001 -> administrative gender, as the HL7 v2-to-FHIR concept map does.

    Returns None for an unrecognised code (the caller reports the field as invalid).
    """
    if code is None:
        return None
    upper = code.upper()
    return _SEX.get(upper) or _SEX_WORDS.get(upper)


def priority(code: str | None) -> str | None:
    """Priority code (table 0027): S/A/R as words, anything else as sent."""
    if code is None:
        return None
    return _PRIORITY.get(code.upper(), code)
