"""Reading the delimiters a message declares in MSH-1 and MSH-2.

MSH-1 is the character right after "MSH"; MSH-2 is everything up to the next field separator:
component, repetition, escape, subcomponent and (v2.7+) truncation character, in that order.
Real feeds bend this in three ways, each handled as a class:

* fewer than four characters: the missing roles get the standard ``^ ~ \\ &`` unless that
  character is already taken, in which case the role is off (nothing splits on it);
* a repeated character: only its first role counts. The common cause is a sender's source code
  escaping the backslash (``^~\\\\&``), which this undoes exactly;
* more than five characters: the extra ones are ignored.

The truncation character has no parsing role; values keep it literally.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import HL7Error

__all__ = ["Delimiters", "read_delimiters"]

_DEFAULTS = "^~\\&"


@dataclass(frozen=True, slots=True)
class Delimiters:
    field: str
    component: str | None
    repetition: str | None
    escape: str | None
    subcomponent: str | None
    truncation: str | None


def read_delimiters(msh_line: str) -> Delimiters:
    """Delimiters of a segment line that starts with "MSH"; HL7Error('unparseable') if none."""
    if len(msh_line) < 4:
        raise HL7Error("unparseable")
    field = msh_line[3]
    if field.isalnum() or field.isspace() or not field.isprintable():
        raise HL7Error("unparseable")
    declared = msh_line[4:].split(field, 1)[0]
    roles: list[str | None] = []
    taken = {field}
    for char in declared:
        if len(roles) == 5:
            break
        if char in taken or char.isspace() or not char.isprintable():
            continue
        taken.add(char)
        roles.append(char)
    for default in _DEFAULTS[len(roles) :] if len(roles) < 4 else "":
        if default in taken:
            roles.append(None)
        else:
            taken.add(default)
            roles.append(default)
    roles += [None] * (5 - len(roles))
    component, repetition, escape, subcomponent, truncation = roles
    return Delimiters(field, component, repetition, escape, subcomponent, truncation)
