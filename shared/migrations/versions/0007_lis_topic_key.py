"""lis_messages: key Pub/Sub deliveries by (source, message id), not message id alone

A Pub/Sub message id is unique within its topic only; the emulator behind `make dev` restarts its
ids at 1, so a second run against the same database saw new lab messages as duplicates of old ones.
The CloudEvent source names the topic (//pubsub.googleapis.com/projects/P/topics/T).

Revision ID: 0007_lis_topic_key
Revises: 0003_lis
"""

from alembic import op
import sqlalchemy as sa

revision = "0007_lis_topic_key"
down_revision = "0003_lis"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "uq_lis_messages_pubsub_source", "lis_messages", ["ce_source", "pubsub_message_id", "part"], unique=True,
        postgresql_where=sa.text("pubsub_message_id IS NOT NULL"),
    )
    op.drop_index("uq_lis_messages_pubsub", table_name="lis_messages", postgresql_where=sa.text("pubsub_message_id IS NOT NULL"))


def downgrade() -> None:
    op.create_index(
        "uq_lis_messages_pubsub", "lis_messages", ["pubsub_message_id", "part"], unique=True,
        postgresql_where=sa.text("pubsub_message_id IS NOT NULL"),
    )
    op.drop_index("uq_lis_messages_pubsub_source", table_name="lis_messages",
                  postgresql_where=sa.text("pubsub_message_id IS NOT NULL"))
