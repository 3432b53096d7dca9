"""dead_letters: name the (event_source, event_id) constraint as the naming convention does

0004 named it uq_dead_letters_event_source; the models' convention gives
uq_dead_letters_event_source_event_id, and autogenerate saw the difference as a drop and re-add.

Revision ID: 0008_dead_letter_key_name
Revises: 0004_events
"""

from alembic import op

revision = "0008_dead_letter_key_name"
down_revision = "0004_events"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE dead_letters RENAME CONSTRAINT uq_dead_letters_event_source TO uq_dead_letters_event_source_event_id")


def downgrade() -> None:
    op.execute("ALTER TABLE dead_letters RENAME CONSTRAINT uq_dead_letters_event_source_event_id TO uq_dead_letters_event_source")
