"""registry: search indexes, name tokens, medical history, versions, merges, order placer numbers

Revision ID: 0002_registry
Revises: 0001_spine
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002_registry"
down_revision = "0001_spine"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # --- search indexes on existing tables ----------------------------------------------------
    op.create_index("ix_patients_family_norm_id", "patients", ["family_norm", "id"])
    op.create_index("ix_patients_status_family_norm_id", "patients", ["status", "family_norm", "id"])
    op.create_index("ix_patients_phone", "patients", ["phone"])
    op.create_index("ix_patients_email", "patients", ["email"])
    op.create_index("ix_patient_identifiers_value", "patient_identifiers", ["value"])
    op.create_index("ix_lab_orders_patient_created", "lab_orders", ["patient_id", "created_at", "id"])

    # --- name search ----------------------------------------------------------------------------
    op.create_table(
        "patient_name_tokens",
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("token", sa.String(length=200, collation="C"), nullable=False),
        sa.CheckConstraint("kind IN ('family','given')", name=op.f("ck_patient_name_tokens_kind")),
        sa.ForeignKeyConstraint(["patient_id"], ["patients.id"], name=op.f("fk_patient_name_tokens_patient_id_patients")),
        sa.PrimaryKeyConstraint("patient_id", "kind", "token", name=op.f("pk_patient_name_tokens")),
    )
    op.create_index("ix_patient_name_tokens_token", "patient_name_tokens", ["token", "kind", "patient_id"])

    # --- medical history -------------------------------------------------------------------------
    op.create_table(
        "history_entries",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("code_system", sa.String(length=200), nullable=True),
        sa.Column("code", sa.String(length=100), nullable=True),
        sa.Column("code_display", sa.String(length=300), nullable=True),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("onset", sa.Date(), nullable=True),
        sa.Column("abatement", sa.Date(), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_by", sa.String(length=100), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "category IN ('condition', 'allergy', 'medication', 'procedure', 'immunization', 'family_history', "
            "'social_history', 'note')",
            name=op.f("ck_history_entries_category"),
        ),
        sa.CheckConstraint("status IN ('active', 'resolved', 'inactive', 'entered-in-error')", name=op.f("ck_history_entries_status")),
        sa.CheckConstraint("abatement IS NULL OR onset IS NULL OR abatement >= onset", name=op.f("ck_history_entries_abatement_after_onset")),
        sa.CheckConstraint("version >= 1", name=op.f("ck_history_entries_version_positive")),
        sa.ForeignKeyConstraint(["patient_id"], ["patients.id"], name=op.f("fk_history_entries_patient_id_patients")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_history_entries")),
    )
    op.create_index("ix_history_entries_patient_recorded", "history_entries", ["patient_id", "recorded_at", "id"])

    # --- versions (append-only) --------------------------------------------------------------------
    op.create_table(
        "resource_versions",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("resource_type", sa.String(length=16), nullable=False),
        sa.Column("resource_id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("change", sa.String(length=32), nullable=False),
        sa.Column("snapshot", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("changed_by", sa.String(length=100), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.CheckConstraint("resource_type IN ('patient','history')", name=op.f("ck_resource_versions_resource_type")),
        sa.ForeignKeyConstraint(["patient_id"], ["patients.id"], name=op.f("fk_resource_versions_patient_id_patients")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_resource_versions")),
        sa.UniqueConstraint("resource_type", "resource_id", "version", name=op.f("uq_resource_versions_resource_type_resource_id_version")),
    )
    op.create_index("ix_resource_versions_patient_id", "resource_versions", ["patient_id"])
    op.execute(
        """
        CREATE FUNCTION resource_versions_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'resource_versions is append-only' USING ERRCODE = 'insufficient_privilege';
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER resource_versions_append_only BEFORE UPDATE OR DELETE ON resource_versions "
        "FOR EACH ROW EXECUTE FUNCTION resource_versions_append_only()"
    )
    op.execute(
        "CREATE TRIGGER resource_versions_no_truncate BEFORE TRUNCATE ON resource_versions "
        "FOR EACH STATEMENT EXECUTE FUNCTION resource_versions_append_only()"
    )

    # --- merges ----------------------------------------------------------------------------------------
    op.create_table(
        "patient_merges",
        sa.Column("source_id", sa.Uuid(), nullable=False),
        sa.Column("target_id", sa.Uuid(), nullable=False),
        sa.Column("merged_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("merged_by", sa.String(length=100), nullable=False),
        sa.Column("moved", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.ForeignKeyConstraint(["source_id"], ["patients.id"], name=op.f("fk_patient_merges_source_id_patients")),
        sa.ForeignKeyConstraint(["target_id"], ["patients.id"], name=op.f("fk_patient_merges_target_id_patients")),
        sa.PrimaryKeyConstraint("source_id", name=op.f("pk_patient_merges")),
    )
    op.create_index(op.f("ix_patient_merges_target_id"), "patient_merges", ["target_id"])

    # Placer numbers of orders placed through the API: unique, never reused.
    op.execute("CREATE SEQUENCE lab_order_placer_seq START WITH 1000000 NO CYCLE")

    _backfill_name_tokens()


def _backfill_name_tokens(batch: int = 1000) -> None:
    """Patients registered before this revision become findable by name."""
    from shared.services.name_index import name_tokens  # noqa: PLC0415

    conn = op.get_bind()
    last = None
    while True:
        rows = conn.execute(
            sa.text(
                "SELECT id, family, given FROM patients WHERE (CAST(:last AS uuid) IS NULL OR id > CAST(:last AS uuid)) "
                "ORDER BY id LIMIT :n"
            ),
            {"last": last, "n": batch},
        ).all()
        if not rows:
            return
        values = [
            {"p": row.id, "k": kind, "t": token}
            for row in rows
            for kind, token in sorted(name_tokens(row.family, row.given or []))
        ]
        if values:
            conn.execute(
                sa.text("INSERT INTO patient_name_tokens (patient_id, kind, token) VALUES (:p, :k, :t) ON CONFLICT DO NOTHING"),
                values,
            )
        last = str(rows[-1].id)


def downgrade() -> None:
    op.execute("DROP SEQUENCE IF EXISTS lab_order_placer_seq")
    op.drop_index(op.f("ix_patient_merges_target_id"), table_name="patient_merges")
    op.drop_table("patient_merges")
    op.execute("DROP TRIGGER IF EXISTS resource_versions_no_truncate ON resource_versions")
    op.execute("DROP TRIGGER IF EXISTS resource_versions_append_only ON resource_versions")
    op.execute("DROP FUNCTION IF EXISTS resource_versions_append_only()")
    op.drop_index("ix_resource_versions_patient_id", table_name="resource_versions")
    op.drop_table("resource_versions")
    op.drop_index("ix_history_entries_patient_recorded", table_name="history_entries")
    op.drop_table("history_entries")
    op.drop_index("ix_patient_name_tokens_token", table_name="patient_name_tokens")
    op.drop_table("patient_name_tokens")
    op.drop_index("ix_lab_orders_patient_created", table_name="lab_orders")
    op.drop_index("ix_patient_identifiers_value", table_name="patient_identifiers")
    op.drop_index("ix_patients_email", table_name="patients")
    op.drop_index("ix_patients_phone", table_name="patients")
    op.drop_index("ix_patients_status_family_norm_id", table_name="patients")
    op.drop_index("ix_patients_family_norm_id", table_name="patients")
