"""jobs: run history (one run per job and slot), job state (cursor and lease), the data-quality
report, order-overdue notices (one per order), and the index lis-reconcile scans

Revision ID: 0006_jobs
Revises: 0001_spine
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006_jobs"
down_revision = "0001_spine"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "job_runs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("job", sa.String(length=64), nullable=False),
        sa.Column("slot", sa.DateTime(timezone=True), nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("event_id", sa.String(length=300), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("counts", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("error_code", sa.String(length=100), nullable=True),
        sa.CheckConstraint("status IN ('running','succeeded','incomplete','failed','retry','skipped')",
                           name=op.f("ck_job_runs_status")),
        sa.CheckConstraint("trigger IN ('schedule','cli')", name=op.f("ck_job_runs_trigger")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_runs")),
        sa.UniqueConstraint("job", "slot", name=op.f("uq_job_runs_job_slot")),
    )
    op.create_index("ix_job_runs_job_started_at", "job_runs", ["job", "started_at"], unique=False)
    op.create_index("ix_job_runs_started_at", "job_runs", ["started_at"], unique=False)

    op.create_table(
        "job_state",
        sa.Column("job", sa.String(length=64), nullable=False),
        sa.Column("cursor", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("holder", sa.Uuid(), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("job", name=op.f("pk_job_state")),
    )

    op.create_table(
        "data_quality_issues",
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("related_ids", postgresql.ARRAY(sa.Uuid()), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "reason IN ('birth_date_missing','birth_date_in_future','birth_date_before_1890',"
            "'phone_invalid','email_invalid','probable_duplicate')",
            name=op.f("ck_data_quality_issues_reason"),
        ),
        sa.ForeignKeyConstraint(["patient_id"], ["patients.id"], name=op.f("fk_data_quality_issues_patient_id_patients")),
        sa.PrimaryKeyConstraint("patient_id", "reason", name=op.f("pk_data_quality_issues")),
    )
    op.create_index("ix_data_quality_issues_reason_patient", "data_quality_issues", ["reason", "patient_id"], unique=False)

    op.create_table(
        "order_overdue_notices",
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("detected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["order_id"], ["lab_orders.id"], name=op.f("fk_order_overdue_notices_order_id_lab_orders")),
        sa.ForeignKeyConstraint(["patient_id"], ["patients.id"], name=op.f("fk_order_overdue_notices_patient_id_patients")),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_order_overdue_notices")),
    )
    op.create_index(op.f("ix_order_overdue_notices_patient_id"), "order_overdue_notices", ["patient_id"], unique=False)

    op.create_index(
        "ix_lab_orders_open_placed", "lab_orders", [sa.text("coalesce(ordered_at, created_at)"), "id"], unique=False,
        postgresql_where=sa.text("status NOT IN ('cancelled','final','corrected')"),
    )


def downgrade() -> None:
    op.drop_index("ix_lab_orders_open_placed", table_name="lab_orders")
    op.drop_index(op.f("ix_order_overdue_notices_patient_id"), table_name="order_overdue_notices")
    op.drop_table("order_overdue_notices")
    op.drop_index("ix_data_quality_issues_reason_patient", table_name="data_quality_issues")
    op.drop_table("data_quality_issues")
    op.drop_table("job_state")
    op.drop_index("ix_job_runs_started_at", table_name="job_runs")
    op.drop_index("ix_job_runs_job_started_at", table_name="job_runs")
    op.drop_table("job_runs")
