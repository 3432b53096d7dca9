"""notifications: one row per (event, kind, channel), the idempotency record of the notify function

Revision ID: 0005_notifications
Revises: 0001_spine
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_notifications"
down_revision = "0001_spine"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notifications",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("event_source", sa.String(length=300), nullable=False),
        sa.Column("event_id", sa.String(length=300), nullable=False),
        sa.Column("event_type", sa.String(length=200), nullable=True),
        sa.Column("order_id", sa.Uuid(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=True),
        sa.Column("language", sa.String(length=35), nullable=True),
        sa.Column("send_after", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=True),
        sa.Column("provider_message_id", sa.String(length=200), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('sending', 'sent', 'pending', 'scheduled', 'skipped', 'failed')",
            name=op.f("ck_notifications_status"),
        ),
        sa.CheckConstraint("kind IN ('results_ready', 'welcome', 'reminder')", name=op.f("ck_notifications_kind")),
        sa.CheckConstraint("channel IN ('email', 'sms')", name=op.f("ck_notifications_channel")),
        sa.CheckConstraint("status <> 'sending' OR claimed_at IS NOT NULL", name=op.f("ck_notifications_sending_is_claimed")),
        sa.CheckConstraint(
            "status NOT IN ('scheduled','pending') OR send_after IS NOT NULL",
            name=op.f("ck_notifications_waiting_has_send_after"),
        ),
        sa.CheckConstraint(
            "status <> 'sent' OR provider_message_id IS NOT NULL", name=op.f("ck_notifications_sent_has_message_id")
        ),
        sa.CheckConstraint("attempts >= 0", name=op.f("ck_notifications_attempts_non_negative")),
        sa.ForeignKeyConstraint(["patient_id"], ["patients.id"], name=op.f("fk_notifications_patient_id_patients")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
        sa.UniqueConstraint("seq", name=op.f("uq_notifications_seq")),
        sa.UniqueConstraint(
            "event_source", "event_id", "kind", "channel", name=op.f("uq_notifications_event_source_event_id_kind_channel")
        ),
    )
    op.create_index("ix_notifications_patient_seq", "notifications", ["patient_id", "seq"], unique=False)
    op.create_index(
        "ix_notifications_due",
        "notifications",
        ["send_after"],
        unique=False,
        postgresql_where=sa.text("status IN ('scheduled','pending')"),
    )
    op.create_index(
        "ix_notifications_sending",
        "notifications",
        ["claimed_at"],
        unique=False,
        postgresql_where=sa.text("status = 'sending'"),
    )


def downgrade() -> None:
    op.drop_index("ix_notifications_sending", table_name="notifications")
    op.drop_index("ix_notifications_due", table_name="notifications")
    op.drop_index("ix_notifications_patient_seq", table_name="notifications")
    op.drop_table("notifications")
