"""Reading the MSH of a framed message and writing the HL7 ACK that answers it.

Works on bytes, like `shared.hl7.framing`: the delimiters are ASCII in every encoding the
framing passes on, and the sender's own values (MSH-3..6, MSH-10) are echoed byte for byte.
The ACK's MSH swaps sender and receiver, keeps the version (MSH-12), processing id (MSH-11) and
character set (MSH-18); MSA-2 echoes MSH-10. An error ACK carries an ERR segment (ERR-3 code from
HL7 table 0357, ERR-4 severity) and a PHI-free MSA-3 text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from shared.ids import uuid4

_LINE_END = re.compile(rb"[\r\n]")
_OWN = (b"patient-mgt", b"")
_DEFAULT_VERSION = b"2.5.1"


@dataclass(frozen=True, slots=True)
class Msh:
    """The fields of a message header the adapter needs, as raw bytes ('' when absent)."""

    field: bytes  # MSH-1
    encoding: bytes  # MSH-2
    fields: tuple[bytes, ...]  # MSH-3 onwards: fields[0] is MSH-3

    def get(self, n: int) -> bytes:
        index = n - 3
        return self.fields[index] if 0 <= index < len(self.fields) else b""

    @property
    def component(self) -> bytes:
        return self.encoding[:1] or b"^"

    def first_component(self, n: int) -> bytes:
        return self.get(n).split(self.component, 1)[0]


def read_msh(message: bytes) -> Msh | None:
    """The MSH of a message that starts with it (as `split_messages` returns them); None if unreadable."""
    line = _LINE_END.split(message, 1)[0]
    if not line.startswith(b"MSH") or len(line) < 8:
        return None
    field = line[3:4]
    if field.isalnum() or field.isspace() or field[0] < 0x21 or field[0] > 0x7E:
        return None
    parts = line.split(field)
    return Msh(field=field, encoding=parts[1], fields=tuple(parts[2:]))


def _trigger(msh: Msh) -> bytes:
    parts = msh.get(9).split(msh.component)
    return parts[1] if len(parts) > 1 else b""


def build_ack(msh: Msh | None, code: str, *, error: tuple[str, str] | None = None, text: str = "") -> bytes:
    """An ACK (segments separated by CR) for `msh`, or for an unreadable frame when `msh` is None.

    `code` is AA, AE or AR; `error` is (table 0357 code, description) for the ERR segment.
    """
    field = msh.field if msh else b"|"
    encoding = msh.encoding if msh else b"^~\\&"
    component = msh.component if msh else b"^"
    now = datetime.now(timezone.utc).strftime("%Y%m%d%H%M%S+0000").encode()
    trigger = _trigger(msh) if msh else b""
    message_type = b"ACK" + (component + trigger if trigger else b"")
    header = [
        msh.get(5) if msh else _OWN[0], msh.get(6) if msh else _OWN[1],  # we are the receiver that answers
        msh.get(3) if msh else b"", msh.get(4) if msh else b"",
        now, b"", message_type, uuid4().hex[:20].encode(),
        (msh.get(11) if msh else b"") or b"P", (msh.get(12) if msh else b"") or _DEFAULT_VERSION,
    ]
    charset = msh.get(18) if msh else b""
    if charset:
        header += [b""] * 5 + [charset]
    msa = [b"MSA", code.encode(), msh.get(10) if msh else b""]
    if text:
        msa.append(text.encode("ascii"))
    segments = [b"MSH" + field + encoding + field + field.join(header), field.join(msa)]
    if error:
        err_code, description = error
        coded = component.join([err_code.encode(), description.encode("ascii"), b"HL70357"])
        segments.append(field.join([b"ERR", b"", b"", coded, b"E"]))
    return b"\r".join(segments) + b"\r"
