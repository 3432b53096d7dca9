"""operator console: sessions (hash of the id only), job runs triggered from the console, and the
indexes its pages read through (failed notifications, a LIS message's replays in the audit trail)

Revision ID: 0009_console
Revises: 0005_notifications, 0006_jobs
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_console"
down_revision = ("0005_notifications", "0006_jobs")
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "console_sessions",
        sa.Column("id_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("api_key_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["api_key_id"], ["api_keys.id"], name=op.f("fk_console_sessions_api_key_id_api_keys"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id_hash", name=op.f("pk_console_sessions")),
    )
    op.create_index("ix_console_sessions_expires_at", "console_sessions", ["expires_at"], unique=False)
    op.create_index(op.f("ix_console_sessions_api_key_id"), "console_sessions", ["api_key_id"], unique=False)
    op.drop_constraint(op.f("ck_job_runs_trigger"), "job_runs", type_="check")
    op.create_check_constraint(op.f("ck_job_runs_trigger"), "job_runs", "trigger IN ('schedule','cli','console')")
    op.create_index("ix_notifications_failed_seq", "notifications", ["seq"], unique=False,
                    postgresql_where=sa.text("status = 'failed'"))
    op.create_index("ix_audit_log_lis_replay", "audit_log", [sa.text("(details ->> 'lis_message_id')")], unique=False,
                    postgresql_where=sa.text("action = 'lis.message.replay'"))


def downgrade() -> None:
    op.drop_index("ix_audit_log_lis_replay", table_name="audit_log")
    op.drop_index("ix_notifications_failed_seq", table_name="notifications")
    op.drop_constraint(op.f("ck_job_runs_trigger"), "job_runs", type_="check")
    op.create_check_constraint(op.f("ck_job_runs_trigger"), "job_runs", "trigger IN ('schedule','cli')")
    op.drop_index(op.f("ix_console_sessions_api_key_id"), table_name="console_sessions")
    op.drop_index("ix_console_sessions_expires_at", table_name="console_sessions")
    op.drop_table("console_sessions")
