"""shared.http.inputs: the rules every query parameter and JSON body meets before a model sees it."""

from __future__ import annotations

import json

import pytest

from shared.errors import InvalidJson, ValidationFailed
from shared.http.inputs import MAX_JSON_DEPTH, check_query, load_json, text_problem


def test_text_that_postgresql_can_store_passes_and_nul_or_a_lone_surrogate_does_not() -> None:
    assert text_problem("Núñez 🧪 \t tab") is None
    assert text_problem("a\x00b") == "must not contain NUL (U+0000)"
    assert text_problem("a\ud800b") == "must not contain a lone surrogate (not Unicode text)"
    assert text_problem("\udfff") is not None


def _query_errors(qs: bytes) -> list[dict]:
    with pytest.raises(ValidationFailed) as caught:
        check_query(qs)
    return caught.value.errors


@pytest.mark.parametrize("qs", [b"", b"a=1&b=", b"name=Ma%C3%ADa+Jos%C3%A9", b"x=%25ED%25A0%2580", b"&&a=1&"])
def test_utf8_query_strings_pass(qs: bytes) -> None:
    check_query(qs)


def test_nul_in_a_value_names_the_parameter() -> None:
    assert _query_errors(b"limit=5&action=%00") == [
        {"in": "query", "field": "action", "message": "must not contain NUL (U+0000)", "code": "unstorable_text"}]


@pytest.mark.parametrize("raw", [b"%ED%A0%80", b"%FF", b"ab%C3"])
def test_an_encoded_surrogate_or_other_invalid_utf8_names_the_parameter(raw: bytes) -> None:
    assert _query_errors(b"since=" + raw) == [
        {"in": "query", "field": "since", "message": "must be percent-encoded UTF-8", "code": "invalid_utf8"}]


def test_a_bad_parameter_name_is_not_echoed() -> None:
    errors = _query_errors(b"ac%00tion=x&%FF=1")
    assert [e["field"] for e in errors] == ["(parameter name)", "(parameter name)"]


def test_json_is_parsed_strictly() -> None:
    assert load_json(b'{"a": [1, "x", null, true]}') == {"a": [1, "x", None, True]}
    for bad in (b'{"a": NaN}', b'{"a": Infinity}', b"\xff", b"{", b""):
        with pytest.raises(InvalidJson):
            load_json(bad)


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def test_depth_up_to_the_limit_passes_and_deeper_is_invalid_json() -> None:
    assert load_json(_nested(MAX_JSON_DEPTH)) is not None
    with pytest.raises(InvalidJson) as caught:
        load_json(_nested(MAX_JSON_DEPTH + 1))
    assert caught.value.detail == f"The body is nested deeper than {MAX_JSON_DEPTH} levels"


@pytest.mark.parametrize("depth", [1_000, 100_000])
def test_a_body_deeper_than_the_parser_can_go_is_invalid_json_not_a_crash(depth: int) -> None:
    with pytest.raises(InvalidJson):
        load_json(_nested(depth))
    with pytest.raises(InvalidJson):
        load_json(b'{"a":' * depth + b"1" + b"}" * depth)


def test_unstorable_text_anywhere_in_a_body_names_its_field() -> None:
    body = {"name": {"family": "ok", "given": ["fine", "bad\u0000"]}, "notes": "\ud800", "k\u0000": 1}
    with pytest.raises(ValidationFailed) as caught:
        load_json(json.dumps(body).encode())
    assert [(e["field"], e["code"]) for e in caught.value.errors] == [
        ("(body) (member name)", "unstorable_text"), ("name.given.1", "unstorable_text"), ("notes", "unstorable_text")]
