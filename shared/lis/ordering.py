"""Order-of-arrival rules, pure: message stamps, field merging, order and result status precedence.

Pub/Sub does not deliver in order, so every write from a LIS message carries the message's
*stamp* — (MSH-7 in UTC, MSH-10, MSH-4) — and the state a set of messages produces is the same
whatever order they arrive in:

* A demographic or order field holds the value of the newest message (by stamp) that carried a
  value for it; an older message never overwrites it (``merge_fields``). A demographic field
  changed through the API carries the edit's stamp (`shared.services.provenance`): a message
  written before the edit does not overwrite it either.
* An order's status only moves up ``ORDER_STATUS_RANK`` (a final order never returns to
  preliminary; a cancel never undoes a final).
* A result keeps every version it was sent; the current one is the highest by
  (status class, stamp): preliminary < final < corrected, newest within a class (``current_version``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from shared.services.provenance import stamp_text

Stamp = tuple[str, str, str]  # (ISO-8601 UTC with microseconds, control-id sort key, facility)

_CONTROL_KEY_WIDTH = 40


def control_sort_key(control_id: str) -> str:
    """MSH-10 as a sortable key: all-digit ids compare as numbers ("9" < "10"), others as text."""
    if control_id.isdigit() and len(control_id) <= _CONTROL_KEY_WIDTH:
        return "0" + control_id.rjust(_CONTROL_KEY_WIDTH, "0")
    return "1" + control_id


def make_stamp(message_time: datetime, control_id: str, facility: str) -> Stamp:
    return (stamp_text(message_time), control_sort_key(control_id), facility)


def stamp_time(stamp: Stamp) -> datetime:
    return datetime.fromisoformat(stamp[0].replace("Z", "+00:00"))


def as_stamp(value: Any) -> Stamp | None:
    """A stamp read back from JSONB (a list), or None."""
    if isinstance(value, (list, tuple)) and len(value) == 3 and all(isinstance(v, str) for v in value):
        return (value[0], value[1], value[2])
    return None


def merge_fields(
    current: Mapping[str, Any], stamps: Mapping[str, Any], incoming: Mapping[str, Any], stamp: Stamp
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """Which incoming fields to write, and the new stamps.

    An incoming value of None means "not sent" and never clears a field. A field is written
    when no message has stamped it yet or this message is newer; the write is reported only if
    the value actually changes, but the stamp moves forward either way.
    """
    changes: dict[str, Any] = {}
    new_stamps: dict[str, list[str]] = {}
    for name, value in incoming.items():
        if value is None:
            continue
        previous = as_stamp(stamps.get(name))
        if previous is not None and previous >= stamp:
            continue
        new_stamps[name] = list(stamp)
        if current.get(name) != value:
            changes[name] = value
    return changes, new_stamps


# --- orders -----------------------------------------------------------------------------------

ORDER_STATUS_RANK: dict[str, int] = {
    "requested": 0,
    "scheduled": 1,
    "on_hold": 2,
    "in_progress": 3,
    "partial": 4,
    "preliminary": 5,
    "cancelled": 6,
    "final": 7,
    "corrected": 8,
}

# ORC-5 (table 0038) and OBR-25 (table 0123) share one vocabulary here; their codes do not clash
# in meaning (A is "some results" in both). ER, RP, Y and Z carry no status and are ignored.
_ORDER_STATUS_CODES = {
    "A": "partial", "CA": "cancelled", "CM": "final", "DC": "cancelled", "HD": "on_hold", "IP": "in_progress",
    "SC": "scheduled", "O": "requested", "I": "in_progress", "S": "scheduled", "P": "preliminary",
    "C": "corrected", "R": "in_progress", "F": "final", "X": "cancelled",
}
CANCEL_CONTROLS = frozenset({"CA", "OC", "DC", "OD", "DR", "CR", "UC"})


def order_status_from_code(code: str | None) -> str | None:
    if not code:
        return None
    return _ORDER_STATUS_CODES.get(code.strip().upper())


def order_status(control: str | None, status_code: str | None, result_statuses: Iterable[str | None]) -> str | None:
    """The status a message asserts for an order: a cancel control wins, then ORC-5/OBR-25,
    then what the results imply, then "requested" for a new order (NW)."""
    control = (control or "").upper()
    if control in CANCEL_CONTROLS:
        return "cancelled"
    mapped = order_status_from_code(status_code)
    if mapped:
        return mapped
    classes = [result_class(s) for s in result_statuses]
    if classes:
        if any(c == 3 for c in classes):
            return "corrected"
        if all(c >= 2 for c in classes):
            return "final"
        return "preliminary"
    if control in ("NW", "SN"):
        return "requested"
    return None


def higher_order_status(current: str | None, incoming: str | None) -> str | None:
    """The status after applying `incoming`: it never moves down the rank."""
    if incoming is None or incoming not in ORDER_STATUS_RANK:
        return current
    if current is None or current not in ORDER_STATUS_RANK:
        return incoming
    return incoming if ORDER_STATUS_RANK[incoming] > ORDER_STATUS_RANK[current] else current


# --- results ----------------------------------------------------------------------------------

# OBX-11 (table 0085) in three classes: 1 not final, 2 final, 3 after final (correction, delete, wrong).
_RESULT_CLASS = {"F": 2, "U": 2, "X": 2, "C": 3, "D": 3, "W": 3}


def result_class(status: str | None) -> int:
    return _RESULT_CLASS.get((status or "").strip().upper(), 1)


def precedence(version: Mapping[str, Any]) -> tuple[int, Stamp]:
    stamp = as_stamp(version.get("stamp")) or ("", "", "")
    return result_class(version.get("status")), stamp


def current_version(versions: Iterable[Mapping[str, Any]]) -> tuple[Mapping[str, Any], list[Mapping[str, Any]]]:
    """(the current version, the others oldest first) — independent of arrival order."""
    ordered = sorted(versions, key=lambda v: as_stamp(v.get("stamp")) or ("", "", ""))
    best = max(ordered, key=precedence)
    return best, [v for v in ordered if v is not best]


def available_status(status: str | None) -> str | None:
    """What a newly current result announces: "final", "corrected" or nothing (not final)."""
    cls = result_class(status)
    if cls == 2:
        return "final"
    if cls == 3:
        return "corrected"
    return None
