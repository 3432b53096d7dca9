"""A development provider: every message becomes a file in an outbox directory.

E-mails are complete MIME messages (``<utc-timestamp>-<uuid>.eml``, open them in any mail client);
SMS are ``<utc-timestamp>-<uuid>.sms.txt`` with ``To``/``Date`` header lines, a blank line and the
text. The message id is the ``<utc-timestamp>-<uuid>`` part, so files sort in sending order.
Addresses are validated as the AWS provider validates them, so development fails the same way.
"""

from __future__ import annotations

import contextlib
import logging
import os
from datetime import datetime, timezone
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import TYPE_CHECKING

from shared.ids import uuid4
from shared.notify.providers.base import TransientProviderError, check_email, check_phone, check_rendered

if TYPE_CHECKING:
    from shared.notify.render import Rendered

logger = logging.getLogger(__name__)


class ConsoleProvider:
    name = "console"

    def __init__(self, outbox_dir: Path | str) -> None:
        self.outbox_dir = Path(outbox_dir)

    def send_email(self, to: str, rendered: Rendered, *, from_address: str) -> str:
        check_rendered(rendered, "email")
        check_email(to)
        check_email(from_address, reason="invalid_sender")
        now = datetime.now(timezone.utc)
        message_id = _new_id(now)
        msg = EmailMessage(policy=policy.default)
        msg["From"] = from_address
        msg["To"] = to
        msg["Subject"] = rendered.subject
        msg["Date"] = format_datetime(now)
        msg["Message-ID"] = f"<{message_id}@outbox.invalid>"
        msg.set_content(rendered.text)
        if rendered.html is not None:
            msg.add_alternative(rendered.html, subtype="html")
        msg["Content-Language"] = rendered.language  # after set_content, which clears Content-*
        self._write(f"{message_id}.eml", msg.as_bytes())
        self._log("email", rendered, message_id)
        return message_id

    def send_sms(self, to: str, rendered: Rendered) -> str:
        check_rendered(rendered, "sms")
        check_phone(to)
        now = datetime.now(timezone.utc)
        message_id = _new_id(now)
        body = f"To: {to}\nDate: {format_datetime(now)}\nContent-Language: {rendered.language}\n\n{rendered.text}\n"
        self._write(f"{message_id}.sms.txt", body.encode("utf-8"))
        self._log("sms", rendered, message_id)
        return message_id

    def _write(self, name: str, data: bytes) -> None:
        """Write atomically (temp file + rename) so a reader never sees half a message."""
        final = self.outbox_dir / name
        tmp = self.outbox_dir / f".{name}.tmp"
        try:
            self.outbox_dir.mkdir(parents=True, exist_ok=True)
            tmp.write_bytes(data)
            os.replace(tmp, final)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            raise TransientProviderError(f"outbox_{type(exc).__name__}") from None

    @staticmethod
    def _log(channel: str, rendered: Rendered, message_id: str) -> None:
        logger.info(
            "notification written to the console outbox",
            extra={"fields": {"provider": "console", "channel": channel, "kind": rendered.kind, "message_id": message_id}},
        )


def _new_id(now: datetime) -> str:
    return f"{now:%Y%m%dT%H%M%S%fZ}-{uuid4().hex}"
