"""lis fidelity: control-id claims keyed by content, patient-level observations, OBX-4 sub-ids,
child orders, several patients per message, and which side (LIS or API) set each demographic field

* ``lis_control_ids``: the key becomes (MSH-4, MSH-10, content digest), so a different message under
  a reused MSH-10 is applied (with a warning) instead of being taken for a duplicate. Claims made
  before this revision get ``''``; the consumer computes their digest from the claiming message's
  stored bytes the first time that (MSH-4, MSH-10) is seen again.
* ``lis_messages.patient_ids``: every patient a message concerned.
* ``lab_results``: ``order_id`` may be null (an observation of the patient, unique per patient and
  key); ``sub_id`` (OBX-4). Results stored before this revision keep their keys: a later message
  about one of them that carries an OBX-4 is keyed with it and files a new result.
* ``lab_orders.parent_order_id`` / ``parent_result_id``: a child order (OBR-29, OBR-26).
* ``lis_patient_sync.field_sources``: who (LIS or API) set each demographic field last
  (``resource_versions.field_sources`` is 0011, on the registry's branch).

Revision ID: 0010_lis_fidelity
Revises: 0007_lis_topic_key
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0010_lis_fidelity"
down_revision = "0007_lis_topic_key"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("lis_control_ids", sa.Column("content_sha256", sa.Text(), nullable=False, server_default=sa.text("''")))
    op.drop_constraint("pk_lis_control_ids", "lis_control_ids", type_="primary")
    op.create_primary_key("pk_lis_control_ids", "lis_control_ids", ["sending_facility", "control_id", "content_sha256"])

    op.add_column("lis_messages", sa.Column("patient_ids", sa.ARRAY(sa.Uuid()), nullable=False,
                                            server_default=sa.text("'{}'::uuid[]")))
    op.execute("UPDATE lis_messages SET patient_ids = ARRAY[patient_id] WHERE patient_id IS NOT NULL")

    op.alter_column("lab_results", "order_id", existing_type=sa.Uuid(), nullable=True)
    op.add_column("lab_results", sa.Column("sub_id", sa.String(length=64), nullable=True))
    op.create_index("uq_lab_results_patient_key", "lab_results", ["patient_id", "result_key"], unique=True,
                    postgresql_where=sa.text("order_id IS NULL"))

    op.add_column("lab_orders", sa.Column("parent_order_id", sa.Uuid(), nullable=True))
    op.add_column("lab_orders", sa.Column("parent_result_id", sa.Uuid(), nullable=True))
    op.create_foreign_key(op.f("fk_lab_orders_parent_order_id_lab_orders"), "lab_orders", "lab_orders",
                          ["parent_order_id"], ["id"])
    op.create_foreign_key(op.f("fk_lab_orders_parent_result_id_lab_results"), "lab_orders", "lab_results",
                          ["parent_result_id"], ["id"])
    op.create_index("ix_lab_orders_parent_order_id", "lab_orders", ["parent_order_id"])

    op.add_column("lis_patient_sync", sa.Column("field_sources", postgresql.JSONB(astext_type=sa.Text()), nullable=False,
                                                server_default=sa.text("'{}'::jsonb")))


def downgrade() -> None:
    op.drop_column("lis_patient_sync", "field_sources")
    op.drop_index("ix_lab_orders_parent_order_id", table_name="lab_orders")
    op.drop_constraint(op.f("fk_lab_orders_parent_result_id_lab_results"), "lab_orders", type_="foreignkey")
    op.drop_constraint(op.f("fk_lab_orders_parent_order_id_lab_orders"), "lab_orders", type_="foreignkey")
    op.drop_column("lab_orders", "parent_result_id")
    op.drop_column("lab_orders", "parent_order_id")
    op.drop_index("uq_lab_results_patient_key", table_name="lab_results", postgresql_where=sa.text("order_id IS NULL"))
    op.drop_column("lab_results", "sub_id")
    op.execute("DELETE FROM lab_results WHERE order_id IS NULL")
    op.alter_column("lab_results", "order_id", existing_type=sa.Uuid(), nullable=False)
    op.drop_column("lis_messages", "patient_ids")
    op.drop_constraint("pk_lis_control_ids", "lis_control_ids", type_="primary")
    op.execute("DELETE FROM lis_control_ids a USING lis_control_ids b WHERE a.sending_facility = b.sending_facility "
               "AND a.control_id = b.control_id AND a.claimed_at > b.claimed_at")
    op.create_primary_key("pk_lis_control_ids", "lis_control_ids", ["sending_facility", "control_id"])
    op.drop_column("lis_control_ids", "content_sha256")
