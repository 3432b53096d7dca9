"""FHIR Bulk Data export: fhir_exports, fhir_export_files, fhir_export_chunks (see shared/models/exports.py)

Revision ID: 0016_i20_fhir_export
Revises: 0015_i20_fhir_fidelity
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = "0016_i20_fhir_export"
down_revision = "0015_i20_fhir_fidelity"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fhir_exports",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("types", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("request_url", sa.Text(), nullable=False),
        sa.Column("requested_by", sa.Uuid(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("type_index", sa.Integer(), nullable=False),
        sa.Column("cursor", sa.Uuid(), nullable=True),
        sa.Column("written", sa.Integer(), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.String(length=64), nullable=True),
        sa.Column("transaction_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('accepted','in-progress','completed','failed','cancelled')",
                           name=op.f("ck_fhir_exports_status")),
        sa.CheckConstraint("level IN ('system','patient')", name=op.f("ck_fhir_exports_level")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fhir_exports")),
    )
    op.create_index("ix_fhir_exports_expires_at", "fhir_exports", ["expires_at"])
    op.create_table(
        "fhir_export_files",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("export_id", sa.Uuid(), nullable=False),
        sa.Column("resource_type", sa.String(length=32), nullable=False),
        sa.Column("part", sa.Integer(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["export_id"], ["fhir_exports.id"], name=op.f("fk_fhir_export_files_export_id_fhir_exports"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fhir_export_files")),
        sa.UniqueConstraint("export_id", "resource_type", "part", name=op.f("uq_fhir_export_files_export_id_resource_type_part")),
    )
    op.create_table(
        "fhir_export_chunks",
        sa.Column("file_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("lines", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["file_id"], ["fhir_export_files.id"], name=op.f("fk_fhir_export_chunks_file_id_fhir_export_files"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("file_id", "seq", name=op.f("pk_fhir_export_chunks")),
    )


def downgrade() -> None:
    op.drop_table("fhir_export_chunks")
    op.drop_table("fhir_export_files")
    op.drop_index("ix_fhir_exports_expires_at", table_name="fhir_exports")
    op.drop_table("fhir_exports")
