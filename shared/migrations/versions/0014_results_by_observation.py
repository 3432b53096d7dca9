"""lab_results: a patient's results in observation-time order (GET /patients/{id}/results and the trend)

Two indexes on (patient_id[, code], coalesce(observed_at, created_at), id): the keyset order of the
results list and of one analyte's trend. The first has patient_id as its leading column, so the
plain (patient_id) index goes (one index more to maintain per result, not two).

Revision ID: 0014_results_by_observation
Revises: 0012_fhir_lab_search
"""

from alembic import op
import sqlalchemy as sa

revision = "0014_results_by_observation"
down_revision = "0012_fhir_lab_search"
branch_labels = None
depends_on = None

OBSERVED = sa.text("coalesce(observed_at, created_at)")


def upgrade() -> None:
    op.create_index("ix_lab_results_patient_observed", "lab_results", ["patient_id", OBSERVED, "id"])
    op.create_index("ix_lab_results_patient_code_observed", "lab_results", ["patient_id", "code", OBSERVED, "id"])
    op.drop_index("ix_lab_results_patient_id", table_name="lab_results")


def downgrade() -> None:
    op.create_index("ix_lab_results_patient_id", "lab_results", ["patient_id"])
    op.drop_index("ix_lab_results_patient_code_observed", table_name="lab_results")
    op.drop_index("ix_lab_results_patient_observed", table_name="lab_results")
