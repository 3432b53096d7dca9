"""The models and the migrations describe the same schema: autogenerate finds nothing to do."""

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from shared.db import get_engine
from shared.models import load_all


def test_migrated_schema_matches_the_models(database_url):
    with get_engine().connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, load_all())
    assert diff == [], "write a migration for: " + "\n".join(map(str, diff))
