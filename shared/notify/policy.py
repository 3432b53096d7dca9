"""Whether, and when, one notification goes out on one channel: consent, address, patient status, quiet hours.

Pure: the caller loads the patient (``Recipient``) and passes the current instant. E-mail is never
deferred; an SMS that would arrive during quiet hours in the patient's time zone waits until they end.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, time
from typing import Final, Literal

from shared.notify.quiet_hours import next_allowed_send

Channel = Literal["email", "sms"]
CHANNELS: Final[tuple[Channel, ...]] = ("email", "sms")

# Reason codes stored on notification rows and shown by GET /patients/{id}/notifications.
NO_CONSENT: Final = "no_consent"
NO_ADDRESS: Final = "no_address"
PATIENT_INACTIVE: Final = "patient_inactive"
PATIENT_MERGED: Final = "patient_merged"
QUIET_HOURS: Final = "quiet_hours"
OUTCOME_UNKNOWN: Final = "outcome_unknown"
RETRIES_EXHAUSTED: Final = "retries_exhausted"


@dataclass(frozen=True, slots=True)
class Recipient:
    """What a notification needs to know about a patient (held in memory only: it is PHI)."""

    patient_id: uuid.UUID
    status: str  # active | inactive | merged
    email: str | None
    phone: str | None
    comm_email: bool
    comm_sms: bool
    timezone: str
    language: str
    given_name: str

    def __repr__(self) -> str:  # never print contact data (tracebacks, debuggers, test output)
        return f"Recipient(patient_id={self.patient_id}, status={self.status})"

    def address(self, channel: Channel) -> str | None:
        return self.email if channel == "email" else self.phone

    def consents(self, channel: Channel) -> bool:
        return self.comm_email if channel == "email" else self.comm_sms


@dataclass(frozen=True, slots=True)
class Decision:
    action: Literal["send", "skip", "schedule"]
    reason: str | None = None
    send_after: datetime | None = None


SEND: Final = Decision("send")


def decide(
    channel: Channel,
    recipient: Recipient,
    now: datetime,
    *,
    quiet_start: time,
    quiet_end: time,
) -> Decision:
    """The decision for one channel at instant ``now`` (timezone-aware)."""
    if recipient.status == "merged":
        return Decision("skip", PATIENT_MERGED)
    if recipient.status != "active":
        return Decision("skip", PATIENT_INACTIVE)
    if not recipient.consents(channel):
        return Decision("skip", NO_CONSENT)
    if not recipient.address(channel):
        return Decision("skip", NO_ADDRESS)
    if channel == "sms":
        later = next_allowed_send(now, recipient.timezone, quiet_start, quiet_end)
        if later is not None:
            return Decision("schedule", QUIET_HOURS, later)
    return SEND
