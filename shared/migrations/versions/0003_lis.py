"""lis: the LIS inbox (lis_messages), the (MSH-4, MSH-10) claims, per-field demographic stamps,
and per-field stamps on lab orders

Revision ID: 0003_lis
Revises: 0001_spine
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003_lis"
down_revision = "0001_spine"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "lis_messages",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("transport", sa.String(length=16), nullable=False),
        sa.Column("ce_source", sa.String(length=300), nullable=False),
        sa.Column("ce_id", sa.String(length=300), nullable=False),
        sa.Column("ce_type", sa.String(length=200), nullable=True),
        sa.Column("pubsub_message_id", sa.String(length=300), nullable=True),
        sa.Column("publish_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ordering_key", sa.String(length=300), nullable=True),
        sa.Column("subscription", sa.String(length=300), nullable=True),
        sa.Column("attributes", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("part", sa.Integer(), nullable=False),
        sa.Column("parts", sa.Integer(), nullable=False),
        sa.Column("content_format", sa.String(length=16), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=True),
        sa.Column("raw_sha256", sa.String(length=64), nullable=False),
        sa.Column("raw_size", sa.Integer(), nullable=False),
        sa.Column("sending_application", sa.String(length=200), nullable=True),
        sa.Column("sending_facility", sa.String(length=200), nullable=True),
        sa.Column("control_id", sa.Text(), nullable=True),
        sa.Column("message_type", sa.String(length=40), nullable=True),
        sa.Column("message_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error_code", sa.String(length=200), nullable=True),
        sa.Column("warnings", sa.ARRAY(sa.Text()), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=True),
        sa.Column("duplicate_of", sa.Uuid(), nullable=True),
        sa.Column("lag_seconds", sa.Float(), nullable=True),
        sa.Column("delivery_count", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "status IN ('processed','duplicate','ignored','quarantined','failed')", name=op.f("ck_lis_messages_status")
        ),
        sa.CheckConstraint("part >= 0 AND part < parts", name=op.f("ck_lis_messages_part_in_range")),
        sa.ForeignKeyConstraint(["duplicate_of"], ["lis_messages.id"], name=op.f("fk_lis_messages_duplicate_of_lis_messages")),
        sa.ForeignKeyConstraint(["patient_id"], ["patients.id"], name=op.f("fk_lis_messages_patient_id_patients")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lis_messages")),
    )
    op.create_index("ix_lis_messages_patient_id", "lis_messages", ["patient_id"], unique=False)
    op.create_index("ix_lis_messages_processed_at", "lis_messages", ["processed_at"], unique=False)
    op.create_index("ix_lis_messages_received_at", "lis_messages", ["received_at"], unique=False)
    op.create_index("ix_lis_messages_status_received_at", "lis_messages", ["status", "received_at"], unique=False)
    op.create_index("uq_lis_messages_cloudevent", "lis_messages", ["ce_source", "ce_id", "part"], unique=True,
                    postgresql_where=sa.text("pubsub_message_id IS NULL"))
    op.create_index("uq_lis_messages_pubsub", "lis_messages", ["pubsub_message_id", "part"], unique=True,
                    postgresql_where=sa.text("pubsub_message_id IS NOT NULL"))
    op.create_table(
        "lis_control_ids",
        sa.Column("sending_facility", sa.Text(), nullable=False),
        sa.Column("control_id", sa.Text(), nullable=False),
        sa.Column("message_id", sa.Uuid(), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["message_id"], ["lis_messages.id"], name=op.f("fk_lis_control_ids_message_id_lis_messages")),
        sa.PrimaryKeyConstraint("sending_facility", "control_id", name=op.f("pk_lis_control_ids")),
    )
    op.create_index(op.f("ix_lis_control_ids_message_id"), "lis_control_ids", ["message_id"], unique=False)
    op.create_table(
        "lis_patient_sync",
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("field_stamps", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["patient_id"], ["patients.id"], name=op.f("fk_lis_patient_sync_patient_id_patients")),
        sa.PrimaryKeyConstraint("patient_id", name=op.f("pk_lis_patient_sync")),
    )
    op.add_column(
        "lab_orders",
        sa.Column("lis_field_stamps", postgresql.JSONB(astext_type=sa.Text()), nullable=False,
                  server_default=sa.text("'{}'::jsonb")),
    )

    op.add_column("lab_results", sa.Column("values", sa.ARRAY(sa.Text()), nullable=False,
                                           server_default=sa.text("'{}'::text[]")))
    op.add_column("lab_results", sa.Column("lis_stamp", postgresql.JSONB(astext_type=sa.Text()), nullable=True))
    op.add_column("lab_results", sa.Column("lis_message_id", sa.Uuid(), nullable=True))


def downgrade() -> None:
    op.drop_column("lab_results", "lis_message_id")
    op.drop_column("lab_results", "lis_stamp")
    op.drop_column("lab_results", "values")
    op.drop_column("lab_orders", "lis_field_stamps")
    op.drop_table("lis_patient_sync")
    op.drop_index(op.f("ix_lis_control_ids_message_id"), table_name="lis_control_ids")
    op.drop_table("lis_control_ids")
    op.drop_index("uq_lis_messages_pubsub", table_name="lis_messages", postgresql_where=sa.text("pubsub_message_id IS NOT NULL"))
    op.drop_index("uq_lis_messages_cloudevent", table_name="lis_messages", postgresql_where=sa.text("pubsub_message_id IS NULL"))
    op.drop_index("ix_lis_messages_status_received_at", table_name="lis_messages")
    op.drop_index("ix_lis_messages_received_at", table_name="lis_messages")
    op.drop_index("ix_lis_messages_processed_at", table_name="lis_messages")
    op.drop_index("ix_lis_messages_patient_id", table_name="lis_messages")
    op.drop_table("lis_messages")
