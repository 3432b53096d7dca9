"""Make a real HL7 sample unique to one test run without touching anything else in its bytes.

Tests share one database, and the samples reuse control ids, patient identifiers and order
numbers (even across files). `tag` appends ``-<tag>`` to MSH-10, to the first component of every
PID-2/3/4 and MRG-1 repetition, to ORC-2/3 and OBR-2/3, and to the parent's placer and filler
numbers in OBR-29 (first subcomponent of its two components) — so each run is a new message about
new patients and orders — and leaves every other byte as it was: framing, BOM, segment
terminators, delimiters, escapes, other fields.
"""

from __future__ import annotations

import re

_SEGMENT_END = re.compile(rb"(\r\n|\r|\n|\x1c)")
_TAGGED = {"PID": (2, 3, 4), "MRG": (1,), "ORC": (2, 3), "OBR": (2, 3)}
_PARENT = ("OBR", 29)  # EIP: placer EI ^ filler EI, each EI's number its first subcomponent


def _tag_field(value: bytes, suffix: bytes, rep: bytes, comp: bytes) -> bytes:
    reps = value.split(rep) if rep else [value]
    out = []
    for r in reps:
        parts = r.split(comp) if comp else [r]
        if parts[0] and parts[0] != b'""':
            parts[0] += suffix
        out.append(comp.join(parts) if comp else parts[0])
    return rep.join(out) if rep else out[0]


def _tag_parent(value: bytes, suffix: bytes, comp: bytes, sub: bytes) -> bytes:
    parts = value.split(comp) if comp else [value]
    for i in range(min(2, len(parts))):
        subs = parts[i].split(sub) if sub else [parts[i]]
        if subs[0]:
            subs[0] += suffix
        parts[i] = sub.join(subs) if sub else subs[0]
    return comp.join(parts) if comp else parts[0]


def tag(raw: bytes, tag_value: str) -> bytes:
    suffix = ("-" + tag_value).encode("ascii")
    pieces = _SEGMENT_END.split(raw)
    sep = comp = rep = sub = None
    out = []
    for piece in pieces:
        if _SEGMENT_END.fullmatch(piece) or not piece:
            out.append(piece)
            continue
        start = piece.find(b"MSH")
        if start >= 0 and len(piece) > start + 8 and (start == 0 or not piece[:start].strip(b"\xef\xbb\xbf\x0b \t")):
            sep = piece[start + 3:start + 4]
            comp, rep = piece[start + 4:start + 5], piece[start + 5:start + 6]
            sub = piece[start + 7:start + 8]
            fields = piece[start:].split(sep)
            if len(fields) > 9 and fields[9]:
                fields[9] += suffix  # MSH-10 (MSH-1 is the separator itself)
            out.append(piece[:start] + sep.join(fields))
            continue
        segment_id = piece[:3].decode("latin-1")
        if sep is None or segment_id not in _TAGGED:
            out.append(piece)
            continue
        fields = piece.split(sep)
        for n in _TAGGED[segment_id]:
            if len(fields) > n and fields[n]:
                fields[n] = _tag_field(fields[n], suffix, rep or b"", comp or b"")
        n = _PARENT[1]
        if segment_id == _PARENT[0] and len(fields) > n and fields[n]:
            fields[n] = _tag_parent(fields[n], suffix, comp or b"", sub or b"")
        out.append(sep.join(fields))
    return b"".join(out)
