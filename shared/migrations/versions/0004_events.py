"""events: dead letters (undeliverable CloudEvents kept for re-drive)

Revision ID: 0004_events
Revises: 0001_spine
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004_events"
down_revision = "0001_spine"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dead_letters",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("origin", sa.String(length=16), nullable=False),
        sa.Column("event_id", sa.String(length=300), nullable=False),
        sa.Column("event_source", sa.String(length=300), nullable=False),
        sa.Column("event_type", sa.String(length=200), nullable=False),
        sa.Column("event_subject", sa.String(length=200), nullable=True),
        sa.Column("attributes", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("datacontenttype", sa.String(length=200), nullable=True),
        sa.Column("data", sa.LargeBinary(), nullable=True),
        sa.Column("error_code", sa.String(length=32), nullable=True),
        sa.Column("error_data", sa.Text(), nullable=True),
        sa.Column("error_dest", sa.String(length=500), nullable=True),
        sa.Column("delivery_attempts", sa.Integer(), nullable=True),
        sa.Column("redrive_target", sa.String(length=300), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("dead_letter_count", sa.Integer(), nullable=False),
        sa.Column("redriven_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("redrive_count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dead_letters")),
        sa.UniqueConstraint("seq", name=op.f("uq_dead_letters_seq")),
        sa.UniqueConstraint("event_source", "event_id", name=op.f("uq_dead_letters_event_source")),
    )
    op.create_index("ix_dead_letters_pending", "dead_letters", ["seq"], unique=False,
                    postgresql_where=sa.text("redriven_at IS NULL"))


def downgrade() -> None:
    op.drop_index("ix_dead_letters_pending", table_name="dead_letters", postgresql_where=sa.text("redriven_at IS NULL"))
    op.drop_table("dead_letters")
