"""The cached placeholder conversion gives exactly what pg8000's own conversion gives."""

import pg8000.dbapi as dbapi
import pytest

from shared.db import _cache_pg8000_query_conversion

QUERIES = [
    "SELECT 1",
    "SELECT * FROM t WHERE a = %s AND b = %s",
    "INSERT INTO t (a, b) VALUES (%s, %s) RETURNING t.id",
    "SELECT '%s is literal', %s FROM t -- a comment with %s\nWHERE x = %s",
    'SELECT "we%sird" FROM t WHERE a = %s',
    "SELECT $$ %s $$, %s",
    "SELECT a::text, b FROM t WHERE a LIKE %s || '%%'",
]


@pytest.mark.parametrize("query", QUERIES)
def test_cached_conversion_matches_the_original(query):
    own = getattr(dbapi.convert_paramstyle, "original", dbapi.convert_paramstyle)  # pg8000's own function
    args = tuple(range(query.count("%s")))
    expected = own("format", query, args)
    _cache_pg8000_query_conversion()
    cached = dbapi.convert_paramstyle
    assert getattr(cached, "cached_by_patient_mgt", False) and cached is not own
    assert cached("format", query, args) == expected
    assert cached("format", query, args) == expected  # the second call comes from the cache


def test_other_paramstyles_are_left_to_pg8000():
    _cache_pg8000_query_conversion()
    assert dbapi.convert_paramstyle("named", "SELECT :a, :b", {"a": 1, "b": 2}) == ("SELECT $1, $2", (1, 2))


def test_the_cursor_sqlalchemy_uses_converts_through_the_cache():
    """SQLAlchemy's pg8000 dialect runs pg8000.legacy's cursor, which imported the function by name:
    patching pg8000.dbapi alone left every statement converted character by character."""
    import pg8000.legacy as legacy
    from sqlalchemy.dialects.postgresql.pg8000 import PGDialect_pg8000

    _cache_pg8000_query_conversion()
    assert PGDialect_pg8000.import_dbapi().Connection is legacy.Connection
    assert getattr(legacy.convert_paramstyle, "cached_by_patient_mgt", False)
