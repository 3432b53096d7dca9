"""spine: patients, identifiers, api keys, audit, outbox, inbox, orders, results

Revision ID: 0001_spine
Revises: (none)
Create Date: 2026-11-25 11:37:06.592854
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0001_spine'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('api_keys',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('token_hash', sa.LargeBinary(length=32), nullable=False),
    sa.Column('token_prefix', sa.String(length=16), nullable=False),
    sa.Column('scopes', sa.ARRAY(sa.Text()), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_keys')),
    sa.UniqueConstraint('name', name=op.f('uq_api_keys_name')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_api_keys_token_hash'))
    )
    op.create_table('audit_log',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=True), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('principal', sa.String(length=100), nullable=False),
    sa.Column('principal_id', sa.Uuid(), nullable=True),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('patient_ids', sa.ARRAY(sa.UUID()), nullable=False),
    sa.Column('request_id', sa.String(length=64), nullable=True),
    sa.Column('outcome', sa.String(length=32), nullable=False),
    sa.Column('details', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log'))
    )
    op.create_index('ix_audit_log_at', 'audit_log', ['at'], unique=False)
    op.create_index('ix_audit_log_patient_ids', 'audit_log', ['patient_ids'], unique=False, postgresql_using='gin')
    op.create_table('outbox',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('seq', sa.BigInteger(), sa.Identity(always=True), nullable=False),
    sa.Column('source', sa.String(length=200), nullable=False),
    sa.Column('type', sa.String(length=200), nullable=False),
    sa.Column('subject', sa.String(length=200), nullable=True),
    sa.Column('time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('dataschema', sa.String(length=300), nullable=True),
    sa.Column('data', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('traceparent', sa.String(length=64), nullable=True),
    sa.Column('tracestate', sa.String(length=512), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox')),
    sa.UniqueConstraint('seq', name=op.f('uq_outbox_seq'))
    )
    op.create_index('ix_outbox_subject_seq', 'outbox', ['subject', 'seq'], unique=False)
    op.create_index('ix_outbox_unpublished', 'outbox', ['seq'], unique=False, postgresql_where=sa.text('published_at IS NULL'))
    op.create_table('patients',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('mrn', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('merged_into', sa.Uuid(), nullable=True),
    sa.Column('family', sa.String(length=200), nullable=False),
    sa.Column('given', sa.ARRAY(sa.Text()), nullable=False),
    sa.Column('prefix', sa.ARRAY(sa.Text()), nullable=False),
    sa.Column('suffix', sa.ARRAY(sa.Text()), nullable=False),
    sa.Column('family_norm', sa.String(length=200), nullable=False),
    sa.Column('first_given_norm', sa.String(length=200), nullable=False),
    sa.Column('birth_date', sa.Date(), nullable=True),
    sa.Column('sex', sa.String(length=16), nullable=False),
    sa.Column('phone', sa.String(length=20), nullable=True),
    sa.Column('email', sa.String(length=254), nullable=True),
    sa.Column('address', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('preferred_language', sa.String(length=35), nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('comm_email', sa.Boolean(), nullable=False),
    sa.Column('comm_sms', sa.Boolean(), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('lis_applied_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('lis_applied_control_id', sa.String(length=64), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("(status = 'merged') = (merged_into IS NOT NULL)", name=op.f('ck_patients_merged_into_iff_merged')),
    sa.CheckConstraint("sex IN ('male','female','other','unknown')", name=op.f('ck_patients_sex')),
    sa.CheckConstraint("status IN ('active','inactive','merged')", name=op.f('ck_patients_status')),
    sa.CheckConstraint('merged_into IS NULL OR merged_into <> id', name=op.f('ck_patients_not_merged_into_self')),
    sa.CheckConstraint('version >= 1', name=op.f('ck_patients_version_positive')),
    sa.ForeignKeyConstraint(['merged_into'], ['patients.id'], name=op.f('fk_patients_merged_into_patients')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_patients')),
    sa.UniqueConstraint('mrn', name=op.f('uq_patients_mrn'))
    )
    op.create_index('ix_patients_birth_date_email', 'patients', ['birth_date', 'email'], unique=False)
    op.create_index('ix_patients_birth_date_phone', 'patients', ['birth_date', 'phone'], unique=False)
    op.create_index('ix_patients_dup_name', 'patients', ['birth_date', 'family_norm', 'first_given_norm'], unique=False)
    op.create_index(op.f('ix_patients_merged_into'), 'patients', ['merged_into'], unique=False)
    op.create_table('processed_events',
    sa.Column('consumer', sa.String(length=64), nullable=False),
    sa.Column('source', sa.String(length=300), nullable=False),
    sa.Column('event_id', sa.String(length=300), nullable=False),
    sa.Column('event_type', sa.String(length=200), nullable=True),
    sa.Column('processed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('consumer', 'source', 'event_id', name=op.f('pk_processed_events'))
    )
    op.create_index('ix_processed_events_processed_at', 'processed_events', ['processed_at'], unique=False)
    op.create_table('lab_orders',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('patient_id', sa.Uuid(), nullable=False),
    sa.Column('placer_namespace', sa.String(length=200), nullable=False),
    sa.Column('placer_number', sa.String(length=100), nullable=True),
    sa.Column('filler_namespace', sa.String(length=200), nullable=False),
    sa.Column('filler_number', sa.String(length=100), nullable=True),
    sa.Column('code_system', sa.String(length=200), nullable=True),
    sa.Column('code', sa.String(length=100), nullable=True),
    sa.Column('code_display', sa.String(length=300), nullable=True),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('priority', sa.String(length=32), nullable=True),
    sa.Column('notes', sa.Text(), nullable=True),
    sa.Column('ordered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('lis_applied_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_lab_orders_patient_id_patients')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lab_orders'))
    )
    op.create_index(op.f('ix_lab_orders_patient_id'), 'lab_orders', ['patient_id'], unique=False)
    op.create_index('uq_lab_orders_filler', 'lab_orders', ['filler_namespace', 'filler_number'], unique=True, postgresql_where=sa.text('filler_number IS NOT NULL'))
    op.create_index('uq_lab_orders_placer', 'lab_orders', ['placer_namespace', 'placer_number'], unique=True, postgresql_where=sa.text('placer_number IS NOT NULL'))
    op.create_table('patient_identifiers',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('patient_id', sa.Uuid(), nullable=False),
    sa.Column('system', sa.String(length=200), nullable=False),
    sa.Column('value', sa.String(length=200), nullable=False),
    sa.Column('type', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_patient_identifiers_patient_id_patients')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_patient_identifiers')),
    sa.UniqueConstraint('system', 'value', name=op.f('uq_patient_identifiers_system_value'))
    )
    op.create_index(op.f('ix_patient_identifiers_patient_id'), 'patient_identifiers', ['patient_id'], unique=False)
    op.create_table('lab_results',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('order_id', sa.Uuid(), nullable=False),
    sa.Column('patient_id', sa.Uuid(), nullable=False),
    sa.Column('result_key', sa.String(length=400), nullable=False),
    sa.Column('code_system', sa.String(length=200), nullable=True),
    sa.Column('code', sa.String(length=100), nullable=True),
    sa.Column('code_display', sa.String(length=300), nullable=True),
    sa.Column('value_type', sa.String(length=8), nullable=True),
    sa.Column('value', sa.Text(), nullable=True),
    sa.Column('units', sa.String(length=100), nullable=True),
    sa.Column('reference_range', sa.String(length=200), nullable=True),
    sa.Column('abnormal_flags', sa.ARRAY(sa.Text()), nullable=False),
    sa.Column('status', sa.String(length=8), nullable=True),
    sa.Column('observed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('notes', sa.ARRAY(sa.Text()), nullable=False),
    sa.Column('lis_applied_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('previous_versions', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['lab_orders.id'], name=op.f('fk_lab_results_order_id_lab_orders')),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_lab_results_patient_id_patients')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lab_results'))
    )
    op.create_index(op.f('ix_lab_results_order_id'), 'lab_results', ['order_id'], unique=False)
    op.create_index(op.f('ix_lab_results_patient_id'), 'lab_results', ['patient_id'], unique=False)
    op.create_index('uq_lab_results_key', 'lab_results', ['order_id', 'result_key'], unique=True)

    # MRNs come from a sequence: unique and never reused, even after a rollback.
    op.execute("CREATE SEQUENCE patient_mrn_seq START WITH 10000000 NO CYCLE")
    # The audit trail is append-only: the database itself refuses to change or delete it.
    op.execute(
        """
        CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'audit_log is append-only' USING ERRCODE = 'insufficient_privilege';
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
        "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()"
    )
    op.execute(
        "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log")
    op.execute("DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log")
    op.execute("DROP FUNCTION IF EXISTS audit_log_append_only()")
    op.execute("DROP SEQUENCE IF EXISTS patient_mrn_seq")
    op.drop_index('uq_lab_results_key', table_name='lab_results')
    op.drop_index(op.f('ix_lab_results_patient_id'), table_name='lab_results')
    op.drop_index(op.f('ix_lab_results_order_id'), table_name='lab_results')
    op.drop_table('lab_results')
    op.drop_index(op.f('ix_patient_identifiers_patient_id'), table_name='patient_identifiers')
    op.drop_table('patient_identifiers')
    op.drop_index('uq_lab_orders_placer', table_name='lab_orders', postgresql_where=sa.text('placer_number IS NOT NULL'))
    op.drop_index('uq_lab_orders_filler', table_name='lab_orders', postgresql_where=sa.text('filler_number IS NOT NULL'))
    op.drop_index(op.f('ix_lab_orders_patient_id'), table_name='lab_orders')
    op.drop_table('lab_orders')
    op.drop_index('ix_processed_events_processed_at', table_name='processed_events')
    op.drop_table('processed_events')
    op.drop_index(op.f('ix_patients_merged_into'), table_name='patients')
    op.drop_index('ix_patients_dup_name', table_name='patients')
    op.drop_index('ix_patients_birth_date_phone', table_name='patients')
    op.drop_index('ix_patients_birth_date_email', table_name='patients')
    op.drop_table('patients')
    op.drop_index('ix_outbox_unpublished', table_name='outbox', postgresql_where=sa.text('published_at IS NULL'))
    op.drop_index('ix_outbox_subject_seq', table_name='outbox')
    op.drop_table('outbox')
    op.drop_index('ix_audit_log_patient_ids', table_name='audit_log', postgresql_using='gin')
    op.drop_index('ix_audit_log_at', table_name='audit_log')
    op.drop_table('audit_log')
    op.drop_table('api_keys')
