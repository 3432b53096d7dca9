"""Operator console sessions: a signed-in browser, stored server-side.

The cookie holds a random session id; only its SHA-256 is stored, so a copy of this table signs no
one in. A session belongs to the API key that signed in: the key's scopes are read at every request
(a revoked key or a changed scope takes effect at once) and the principal in the audit trail is the
key's name, as through the API.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, LargeBinary
from sqlalchemy.orm import Mapped, mapped_column

from shared.models.base import Base, utcnow
from shared.models import auth as _auth  # noqa: F401  (the table its foreign keys reference)


class ConsoleSession(Base):
    __tablename__ = "console_sessions"
    __table_args__ = (Index("ix_console_sessions_expires_at", "expires_at"),)

    id_hash: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    api_key_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
