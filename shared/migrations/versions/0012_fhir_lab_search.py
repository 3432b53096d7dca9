"""lab_results: index the FHIR view's Observation?code= search without a patient

``GET /fhir/Observation?code=http://loinc.org|718-7`` pages every patient's results with that code,
newest first: (code, created_at, id) answers it from the index, in page order.

Revision ID: 0012_fhir_lab_search
Revises: 0010_lis_fidelity
"""

from alembic import op

revision = "0012_fhir_lab_search"
down_revision = "0010_lis_fidelity"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_lab_results_code_created", "lab_results", ["code", "created_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_lab_results_code_created", table_name="lab_results")
