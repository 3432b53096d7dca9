"""Opaque cursors, the name-token index and the prefix range used to search it."""

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.errors import ValidationFailed
from shared.services import cursor
from shared.services.name_index import name_tokens
from shared.services.search import prefix_upper_bound


def test_cursor_round_trips_and_carries_no_readable_data():
    pid = uuid.uuid4()
    token = cursor.encode("p", pid)
    assert cursor.decode_id("p", token) == pid
    assert str(pid) not in token and "=" not in token
    assert cursor.decode_int("v", cursor.encode("v", 12345)) == 12345


@pytest.mark.parametrize("token", ["", "!!!", "bm9wZQ", cursor.encode("h", uuid.UUID(int=1)), cursor.encode("p", 7)])
def test_foreign_or_garbage_cursors_are_a_422_on_the_cursor_field(token):
    with pytest.raises(ValidationFailed) as info:
        cursor.decode_id("p", token)
    assert info.value.errors == [{"in": "query", "field": "cursor", "message": "is not a cursor this list issued",
                                  "code": "invalid_cursor"}]


def test_name_tokens_fold_case_accents_hyphens_and_keep_whole_names():
    assert name_tokens("García-López", ["Jean Pierre", "Ana"]) == {
        ("family", "garcia"), ("family", "lopez"), ("family", "garcialopez"),
        ("given", "jean"), ("given", "pierre"), ("given", "jeanpierre"), ("given", "ana"),
    }
    assert name_tokens("MÜLLER", []) == {("family", "muller")}
    assert name_tokens("O'Brien", []) == {("family", "o"), ("family", "brien"), ("family", "obrien")}


@given(st.text(min_size=1, max_size=6), st.text(max_size=6))
def test_prefix_range_holds_every_extension(prefix, rest):
    # Code-point order is what collation "C" gives for UTF-8 text.
    upper = prefix_upper_bound(prefix)
    assert prefix <= prefix + rest < upper


@given(st.text(min_size=1, max_size=6), st.text(min_size=1, max_size=8))
def test_prefix_range_excludes_strings_without_the_prefix(prefix, other):
    if not other.startswith(prefix) and "\U0010ffff" not in prefix:
        assert not (prefix <= other < prefix_upper_bound(prefix))


def test_prefix_bound_skips_surrogates():
    assert prefix_upper_bound("a\ud7ff") == "a\ue000"
