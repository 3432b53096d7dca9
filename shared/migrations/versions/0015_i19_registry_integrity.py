"""duplicate_flags (probable duplicates found on every change, and their review), merge chains
flattened to one hop, and a deferred constraint trigger that keeps them so

Online (docs/architecture.md, "Online migrations"): duplicate_flags is a new table, so its
indexes are built with it; the chains are flattened in batches of short transactions; the trigger
is created under a short lock_timeout, retried.

The trigger ``patients_merge_one_hop`` checks, at commit, every patient row written as merged:
its ``merged_into`` must be a patient that is not merged itself, and nothing may point at a
patient that is merged. Every merge is then one hop and a cycle cannot exist. It locks the target
row ``FOR SHARE``, so two transactions that would build a chain between them serialise and the
second one fails.

Revision ID: 0015_i19_registry_integrity
Revises: 0011_version_field_sources
"""

import sqlalchemy as sa
from alembic import op

from shared.migrations import online

revision = "0015_i19_registry_integrity"
down_revision = "0011_version_field_sources"
branch_labels = None
depends_on = None

ONE_HOP_FUNCTION = """
CREATE OR REPLACE FUNCTION patients_merge_one_hop() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
    now_status text;
    now_into uuid;
    target_status text;
BEGIN
    -- The row as it is at commit (later statements of the transaction may have changed it again).
    SELECT status, merged_into INTO now_status, now_into FROM patients WHERE id = NEW.id;
    IF now_into IS NOT NULL THEN
        SELECT status INTO target_status FROM patients WHERE id = now_into FOR SHARE;
        IF target_status = 'merged' THEN
            RAISE EXCEPTION 'a patient may only be merged into a patient that is not merged (merge chains are one hop)'
                USING ERRCODE = 'check_violation', CONSTRAINT = 'patients_merge_one_hop';
        END IF;
    END IF;
    IF now_status = 'merged' AND EXISTS (SELECT 1 FROM patients WHERE merged_into = NEW.id) THEN
        RAISE EXCEPTION 'a merged patient may not be the target of another merge (merge chains are one hop)'
            USING ERRCODE = 'check_violation', CONSTRAINT = 'patients_merge_one_hop';
    END IF;
    RETURN NULL;
END
$fn$
"""

ONE_HOP_TRIGGER = """
DO $do$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'patients_merge_one_hop'
                   AND tgrelid = 'patients'::regclass) THEN
        CREATE CONSTRAINT TRIGGER patients_merge_one_hop
            AFTER INSERT OR UPDATE OF status, merged_into ON patients
            DEFERRABLE INITIALLY DEFERRED
            FOR EACH ROW WHEN (NEW.merged_into IS NOT NULL OR NEW.status = 'merged')
            EXECUTE FUNCTION patients_merge_one_hop();
    END IF;
END
$do$
"""


def upgrade() -> None:
    op.create_table(
        "duplicate_flags",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("patient_a", sa.Uuid(), nullable=False),
        sa.Column("patient_b", sa.Uuid(), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("flagged_patient_id", sa.Uuid(), nullable=False),
        sa.Column("origin", sa.String(length=16), nullable=False),
        sa.Column("flagged_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("flagged_by", sa.String(length=100), nullable=False),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reviewed_by", sa.String(length=100), nullable=True),
        sa.CheckConstraint("status IN ('open','not_duplicate','merged')", name=op.f("ck_duplicate_flags_status")),
        sa.CheckConstraint("patient_a < patient_b", name=op.f("ck_duplicate_flags_pair_ordered")),
        sa.CheckConstraint("(status = 'open') = (reviewed_at IS NULL)", name=op.f("ck_duplicate_flags_reviewed_iff_closed")),
        sa.ForeignKeyConstraint(["patient_a"], ["patients.id"], name=op.f("fk_duplicate_flags_patient_a_patients")),
        sa.ForeignKeyConstraint(["patient_b"], ["patients.id"], name=op.f("fk_duplicate_flags_patient_b_patients")),
        sa.ForeignKeyConstraint(["flagged_patient_id"], ["patients.id"],
                                name=op.f("fk_duplicate_flags_flagged_patient_id_patients")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_duplicate_flags")),
        sa.UniqueConstraint("patient_a", "patient_b", name=op.f("uq_duplicate_flags_patient_a_patient_b")),
    )
    op.create_index("ix_duplicate_flags_patient_b", "duplicate_flags", ["patient_b"])
    op.create_index("ix_duplicate_flags_status", "duplicate_flags", ["status"])
    # Chains left by earlier merges (A → B → C): one hop shorter per pass, until none is left.
    online.backfill(
        "patients",
        "merged_into = (SELECT m.merged_into FROM patients m WHERE m.id = patients.merged_into), "
        "version = version + 1, updated_at = now()",
        "merged_into IN (SELECT id FROM patients WHERE status = 'merged')",
    )
    online.ddl(ONE_HOP_FUNCTION)
    online.ddl(ONE_HOP_TRIGGER)


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS patients_merge_one_hop ON patients")
    op.execute("DROP FUNCTION IF EXISTS patients_merge_one_hop()")
    op.drop_table("duplicate_flags")
