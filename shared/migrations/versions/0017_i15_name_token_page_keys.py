"""patient_name_tokens carries its patient's page keys (family_norm, status), kept equal by triggers,
so a name search's page comes from the token index alone

A search by name orders by ``(family_norm, id)`` and filters by status: with those on the token
rows, the page is an index-only range scan of ``ix_patient_name_tokens_page`` instead of a probe of
``patients`` per matching token (or a scan of every patient's keys). See services/search.py.

The copies are kept by the database, so every writer (the ORM, the SQL registration, the LIS feed,
merges, bulk loads) stays right without knowing about them:

- ``patient_name_tokens_keys`` (BEFORE INSERT, or an UPDATE of ``patient_id``, on
  ``patient_name_tokens``): the row's keys are read from its patient, whatever the writer gave.
  ``FOR SHARE`` orders it with a concurrent change of the patient: that change commits first (and
  its values are read) or waits for this transaction (and its trigger then sees these rows).
- ``patient_name_tokens_keys_late`` (AFTER INSERT, when the patient was not there yet): a statement
  that inserts the patient and its tokens as independent parts (the LIS fast path's one statement of
  CTEs, whose order PostgreSQL does not fix) fills them at the statement's end, when it is. The
  columns stay nullable for that moment; after any statement they hold the patient's values.
- ``patients_name_token_keys`` (AFTER UPDATE on ``patients``, when family_norm or status changed):
  the patient's token rows get the new values.

Online (docs/architecture.md, "Online migrations"): the columns are added nullable, the triggers
created under a short lock_timeout (from then on every write keeps the copies), the rows written
before are filled in batches; the index is built concurrently and replaces
``ix_patient_name_tokens_token``, whose columns lead it.

Revision ID: 0017_i15_name_token_page_keys
Revises: 0015_i19_registry_integrity
"""

import sqlalchemy as sa

from shared.migrations import online

revision = "0017_i15_name_token_page_keys"
down_revision = "0015_i19_registry_integrity"
branch_labels = None
depends_on = None


def trigger_function(name: str, body: str) -> str:
    return f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $fn$\nBEGIN\n{body}\nEND\n$fn$"


FUNCTIONS = {
    # the row's keys from its patient, whatever the writer gave (NULL while the patient is not there yet)
    "patient_name_tokens_keys": """
    SELECT p.family_norm, p.status INTO NEW.family_norm, NEW.status
    FROM patients p WHERE p.id = NEW.patient_id FOR SHARE;
    RETURN NEW;""",
    # at the end of a statement that wrote the tokens before their patient
    "patient_name_tokens_keys_late": """
    UPDATE patient_name_tokens t SET family_norm = p.family_norm, status = p.status
    FROM patients p
    WHERE p.id = NEW.patient_id AND t.patient_id = NEW.patient_id AND t.kind = NEW.kind AND t.token = NEW.token;
    RETURN NULL;""",
    # a patient's new family_norm or status onto its tokens
    "patients_name_token_keys": """
    UPDATE patient_name_tokens SET family_norm = NEW.family_norm, status = NEW.status WHERE patient_id = NEW.id;
    RETURN NULL;""",
}
TRIGGERS = [  # (name, table, definition)
    ("patient_name_tokens_keys", "patient_name_tokens",
     "BEFORE INSERT OR UPDATE OF patient_id ON patient_name_tokens FOR EACH ROW "
     "EXECUTE FUNCTION patient_name_tokens_keys()"),
    ("patient_name_tokens_keys_late", "patient_name_tokens",
     "AFTER INSERT ON patient_name_tokens FOR EACH ROW WHEN (NEW.family_norm IS NULL OR NEW.status IS NULL) "
     "EXECUTE FUNCTION patient_name_tokens_keys_late()"),
    ("patients_name_token_keys", "patients",
     "AFTER UPDATE ON patients FOR EACH ROW "
     "WHEN (OLD.family_norm IS DISTINCT FROM NEW.family_norm OR OLD.status IS DISTINCT FROM NEW.status) "
     "EXECUTE FUNCTION patients_name_token_keys()"),
]


def upgrade() -> None:
    online.add_column("patient_name_tokens", sa.Column("family_norm", sa.String(length=200), nullable=True))
    online.add_column("patient_name_tokens", sa.Column("status", sa.String(length=16), nullable=True))
    for name, body in FUNCTIONS.items():
        online.ddl(trigger_function(name, body))
    for name, table, definition in TRIGGERS:
        online.create_trigger(name, table, definition)
    # Rows written before the triggers. No lock on the patient here (a batch holds its token rows, so
    # waiting for a patient could deadlock with that patient's update waiting for them): a patient
    # changed meanwhile has its trigger update these rows after the batch, with the new values.
    online.backfill("patient_name_tokens",
                    "(family_norm, status) = (SELECT p.family_norm, p.status FROM patients p "
                    "WHERE p.id = patient_name_tokens.patient_id)",
                    "family_norm IS NULL OR status IS NULL")
    online.create_index("ix_patient_name_tokens_page", "patient_name_tokens", "token, kind, family_norm, patient_id",
                        include="status")
    online.drop_index("ix_patient_name_tokens_token")


def downgrade() -> None:
    online.create_index("ix_patient_name_tokens_token", "patient_name_tokens", "token, kind, patient_id")
    online.drop_index("ix_patient_name_tokens_page")
    for name, table, _ in TRIGGERS:
        online.ddl(f"DROP TRIGGER IF EXISTS {name} ON {table}")
    for name in FUNCTIONS:
        online.ddl(f"DROP FUNCTION IF EXISTS {name}()")
    online.ddl("ALTER TABLE patient_name_tokens DROP COLUMN family_norm, DROP COLUMN status")
