"""JSON merge patch (RFC 7396): the RFC's own examples (Appendix A)."""

import json

import pytest

from shared.services.merge_patch import apply_merge_patch, changed_members

RFC_7396_APPENDIX_A = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize(("target", "patch", "expected"), RFC_7396_APPENDIX_A)
def test_rfc_7396_examples(target, patch, expected):
    before = json.dumps(target)
    assert apply_merge_patch(target, patch) == expected
    assert json.dumps(target) == before, "the target is not modified in place"


def test_changed_members_names_top_level_fields_only():
    before = {"name": {"family": "A"}, "phone": "+1", "sex": "male"}
    after = {"name": {"family": "B"}, "sex": "male", "email": "x@example.org"}
    assert changed_members(before, after) == ["email", "name", "phone"]
    assert changed_members(before, dict(before)) == []
