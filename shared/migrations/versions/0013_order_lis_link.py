"""lab_orders: when an order placed here reached the LIS, and when the LIS accepted it

Written by the MLLP adapter once the LIS acknowledged the order message (sent_to_lis_at) and
accepted the order (lis_accepted_at: ORC-1 OK or a filler number in its ORR/ORL). Nullable columns
without defaults: a metadata-only change, the previous revision keeps working.

Revision ID: 0013_order_lis_link
Revises: 0001_spine
"""

import sqlalchemy as sa
from alembic import op

revision = "0013_order_lis_link"
down_revision = "0001_spine"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("lab_orders", sa.Column("sent_to_lis_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("lab_orders", sa.Column("lis_accepted_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("lab_orders", "lis_accepted_at")
    op.drop_column("lab_orders", "sent_to_lis_at")
