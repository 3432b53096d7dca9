"""critical_alerts and critical_alert_messages: a critical result's alert, its escalation, its acknowledgement

Revision ID: 0010_critical_alerts
Revises: 0001_spine
"""

from alembic import op
import sqlalchemy as sa

revision = "0010_critical_alerts"
down_revision = "0001_spine"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "critical_alerts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("result_id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("order_id", sa.Uuid(), nullable=True),
        sa.Column("code", sa.String(length=100), nullable=True),
        sa.Column("reason", sa.String(length=40), nullable=False),
        sa.Column("facility", sa.String(length=200), nullable=True),
        sa.Column("ward", sa.String(length=100), nullable=True),
        sa.Column("route", sa.String(length=320), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("escalate_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("escalated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_by", sa.String(length=200), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("status IN ('open', 'acknowledged')", name=op.f("ck_critical_alerts_status")),
        sa.CheckConstraint("status <> 'acknowledged' OR acknowledged_at IS NOT NULL",
                           name=op.f("ck_critical_alerts_acknowledged_has_time")),
        sa.ForeignKeyConstraint(["patient_id"], ["patients.id"], name=op.f("fk_critical_alerts_patient_id_patients")),
        sa.ForeignKeyConstraint(["result_id"], ["lab_results.id"], name=op.f("fk_critical_alerts_result_id_lab_results")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_critical_alerts")),
        sa.UniqueConstraint("result_id", name=op.f("uq_critical_alerts_result_id")),
    )
    op.create_index("ix_critical_alerts_due", "critical_alerts", ["escalate_at"],
                    postgresql_where=sa.text("status = 'open' AND escalated_at IS NULL"))
    op.create_index("ix_critical_alerts_patient", "critical_alerts", ["patient_id", "created_at"])
    op.create_table(
        "critical_alert_messages",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("alert_id", sa.Uuid(), nullable=False),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("provider_message_id", sa.String(length=200), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("level IN ('alert', 'escalation')", name=op.f("ck_critical_alert_messages_level")),
        sa.CheckConstraint("status IN ('sending', 'sent', 'pending', 'failed', 'unrouted')",
                           name=op.f("ck_critical_alert_messages_status")),
        sa.CheckConstraint("status <> 'sending' OR claimed_at IS NOT NULL",
                           name=op.f("ck_critical_alert_messages_sending_is_claimed")),
        sa.ForeignKeyConstraint(["alert_id"], ["critical_alerts.id"],
                                name=op.f("fk_critical_alert_messages_alert_id_critical_alerts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_critical_alert_messages")),
        sa.UniqueConstraint("alert_id", "level", name=op.f("uq_critical_alert_messages_alert_id_level")),
    )


def downgrade() -> None:
    op.drop_table("critical_alert_messages")
    op.drop_index("ix_critical_alerts_patient", table_name="critical_alerts")
    op.drop_index("ix_critical_alerts_due", table_name="critical_alerts", postgresql_where=sa.text("status = 'open' AND escalated_at IS NULL"))
    op.drop_table("critical_alerts")
