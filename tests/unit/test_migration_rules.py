"""The static online-migration check: every revision after the baseline passes it, and each rule
catches the statement it is about (and lets its online form through)."""

import pytest

from shared.migrations import online, rules


def test_every_revision_after_the_baseline_follows_the_online_rules():
    checked = rules.after_baseline(online.BASELINE)
    assert checked, "no revision after the baseline: the rules check nothing"
    assert {name: found for name, found in checked.items() if found} == {}


def test_the_baseline_names_real_revisions_and_some_break_the_rules():
    sources = {rules.revision_of(p.read_text()): p.read_text() for p in rules.VERSIONS_DIR.glob("*.py")}
    assert online.BASELINE <= set(sources)
    # the reason for a baseline: 0014 built its indexes in the transaction
    assert rules.problems(sources["0014_results_by_observation"])


HEAD = 'from alembic import op\nimport sqlalchemy as sa\nfrom shared.migrations import online\n'
BAD = {
    "index": 'def upgrade():\n    op.create_index("ix_p_x", "patients", ["family"])\n',
    "index_sql": 'def upgrade():\n    op.execute("CREATE INDEX ix_p_x ON patients (family)")\n',
    "unique_index_sql": 'def upgrade():\n    op.execute("create unique index ix_p_x on patients (mrn)")\n',
    "not_null_column": 'def upgrade():\n    op.add_column("patients", sa.Column("x", sa.Text(), nullable=False))\n',
    "not_null_column_sql": 'def upgrade():\n    op.execute("ALTER TABLE patients ADD COLUMN x text NOT NULL")\n',
    "check": 'def upgrade():\n    op.create_check_constraint("ck_x", "patients", "version > 0")\n',
    "foreign_key": 'def upgrade():\n    op.create_foreign_key("fk_x", "lab_orders", "patients", ["patient_id"], ["id"])\n',
    "unique": 'def upgrade():\n    op.create_unique_constraint("uq_x", "patients", ["email"])\n',
    "constraint_sql": 'def upgrade():\n    op.execute("ALTER TABLE patients ADD CONSTRAINT ck_x CHECK (version > 0)")\n',
}
GOOD = {
    "online_helpers": 'def upgrade():\n    online.create_index("ix_p_x", "patients", "family")\n'
                      '    online.add_column("patients", sa.Column("x", sa.Text(), nullable=True))\n'
                      '    online.backfill("patients", "x = family", "x IS NULL")\n'
                      '    online.add_check("patients", "ck_x", "x IS NOT NULL")\n    online.validate("patients", "ck_x")\n',
    "concurrently": 'def upgrade():\n    with op.get_context().autocommit_block():\n'
                    '        op.create_index("ix_p_x", "patients", ["family"], postgresql_concurrently=True)\n',
    "index_sql_concurrently": 'def upgrade():\n    op.execute("CREATE INDEX CONCURRENTLY ix_p_x ON patients (family)")\n',
    "default_column": 'def upgrade():\n    op.add_column("patients", sa.Column("x", sa.Text(), nullable=False, server_default="a"))\n',
    "not_valid_sql": 'def upgrade():\n    op.execute("ALTER TABLE patients ADD CONSTRAINT ck_x CHECK (version > 0) NOT VALID")\n',
    "unique_using_index": 'def upgrade():\n    op.execute("ALTER TABLE patients ADD CONSTRAINT uq_x UNIQUE USING INDEX ix_x")\n',
    "new_table": 'def upgrade():\n    op.create_table("things", sa.Column("id", sa.Uuid(), nullable=False))\n'
                 '    op.create_index("ix_things_id", "things", ["id"])\n'
                 '    op.create_check_constraint("ck_things", "things", "id IS NOT NULL")\n',
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_a_blocking_statement_is_caught(name):
    assert len(rules.problems(HEAD + BAD[name])) == 1


@pytest.mark.parametrize("name", sorted(GOOD))
def test_its_online_form_passes(name):
    assert rules.problems(HEAD + GOOD[name]) == []


def test_a_bad_revision_after_the_baseline_is_reported(tmp_path):
    (tmp_path / "0099_bad.py").write_text(HEAD + 'revision = "0099_bad"\n' + BAD["index"])
    (tmp_path / "0001_spine.py").write_text(HEAD + 'revision = "0001_spine"\n' + BAD["index"])
    assert list(rules.after_baseline(online.BASELINE, tmp_path)) == ["0099_bad.py"]
    assert rules.after_baseline(online.BASELINE, tmp_path)["0099_bad.py"]
