"""FHIR fidelity: a result's effective time as the LIS sent it, an absent language, isolates' members

* ``lab_results.observed_text``: OBX-14 (or the OBR-7 that stood in for it) as sent, so the FHIR view
  keeps its precision (``20260101`` is the date 2026-01-01, not midnight UTC) and says an offset only
  where the message gave one. NULL for results that did not come from HL7 v2 (their instant is exact).
* ``patients.preferred_language`` nullable: a LIS patient is created without a language it was never
  sent (the API's own registration keeps its documented default, ``en``).
* ``ix_lab_orders_parent_result_id``: the child orders of a result (a culture isolate's susceptibility
  panel) — FHIR ``Observation.hasMember`` and the API's ``result_groups`` look them up by it.

Revision ID: 0015_i20_fhir_fidelity
Revises: 0014_results_by_observation
"""

import sqlalchemy as sa
from alembic import op

from shared.migrations import online

revision = "0015_i20_fhir_fidelity"
down_revision = "0014_results_by_observation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Online (shared.migrations.online): a nullable column, a metadata-only DROP NOT NULL under a short
    # lock_timeout with retries, the index built CONCURRENTLY and checked valid.
    online.add_column("lab_results", sa.Column("observed_text", sa.String(length=32), nullable=True))
    online.ddl("ALTER TABLE patients ALTER COLUMN preferred_language DROP NOT NULL")
    online.create_index("ix_lab_orders_parent_result_id", "lab_orders", "parent_result_id")


def downgrade() -> None:
    online.drop_index("ix_lab_orders_parent_result_id")
    op.execute("UPDATE patients SET preferred_language = 'en' WHERE preferred_language IS NULL")
    op.alter_column("patients", "preferred_language", existing_type=sa.String(length=35), nullable=False)
    op.drop_column("lab_results", "observed_text")
