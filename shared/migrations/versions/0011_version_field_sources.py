"""resource_versions.field_sources: each patient version says which side (LIS or API) set each
demographic field last, as of that version (GET /patients/{id}/versions)

Revision ID: 0011_version_field_sources
Revises: 0002_registry
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0011_version_field_sources"
down_revision = "0002_registry"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("resource_versions", sa.Column("field_sources", postgresql.JSONB(astext_type=sa.Text()), nullable=True))


def downgrade() -> None:
    op.drop_column("resource_versions", "field_sources")
