"""A search's SQL text is one per query shape and holds no value: PostgreSQL logs a failed
statement's text, so names, birth dates, identifiers and contact data are parameters only."""

import re
import uuid

import pytest

from shared.mrn import luhn_check_digit
from shared.normalize import tokens
from shared.schemas.search import PatientSearchQuery
from shared.services.search import runs_prepared, search_sql, search_values

MRN = "7300451" + luhn_check_digit("7300451")
# What search_page binds beside the filters: the page size, the audit row's fields.
REQUEST_VALUES = {"s_limit", "s_at", "s_principal", "s_principal_id", "s_request_id", "s_params"}
QUERIES = [
    {"name": "Zoë Quillfeather", "birth_date": "1961-02-03", "identifier": "urn:oid:9.8.7|ID-778899", "mrn": MRN,
     "phone": "+14155550199", "email": "Zoe.Quill@example.org", "status": "active,merged"},
    {"family": "Vanderbilt-Oyelaran", "given": "Annemarie Josefine"},
    {"identifier": "XK-4411220", "status": "inactive"},
    {},
]


@pytest.mark.parametrize("params", QUERIES, ids=lambda p: ",".join(p) or "no filter")
@pytest.mark.parametrize("with_cursor", [False, True], ids=["first page", "after a cursor"])
def test_the_text_holds_no_value_and_every_parameter_has_one(params, with_cursor):
    cursor_id = uuid.uuid4() if with_cursor else None
    shape, values = search_values(PatientSearchQuery.model_validate(params), cursor_id)
    sql, names = search_sql(shape)
    words = [w for field in ("name", "family", "given") for w in tokens(params.get(field, ""))]
    secrets = [*params.values(), *words, str(cursor_id), "1961", "778899", "4411220", "5550199", "quill"]
    assert not [s for s in secrets if s and s.lower() in sql.lower() and s not in ("active,merged", "inactive")]
    assert set(names) <= set(values) | REQUEST_VALUES
    assert set(values) <= set(names)  # every value the query brings is used


def test_one_text_per_shape_whatever_the_values():
    one, _ = search_values(PatientSearchQuery.model_validate({"name": "ann lee", "phone": "+14155550100"}))
    other, _ = search_values(PatientSearchQuery.model_validate({"name": "Bob  Okafor", "phone": "+442071838750"}))
    assert one == other
    assert search_sql.__wrapped__(one) == search_sql.__wrapped__(other)


@pytest.mark.parametrize("params", [*QUERIES, {"name": "ann lee", "status": "merged"}],
                         ids=lambda p: ",".join(p) or "no filter")
@pytest.mark.parametrize("with_cursor", [False, True], ids=["first page", "after a cursor"])
def test_a_search_by_name_words_alone_runs_prepared_its_words_and_limits_out_of_the_planners_sight(params,
                                                                                                    with_cursor):
    """Only a name-only shape runs prepared, and its text has every word, range bound and LIMIT as
    ``(SELECT $n)``, so that its generic plan is its custom plan (``runs_prepared``); every other
    shape has none: their texts are planned for the values."""
    shape, values = search_values(PatientSearchQuery.model_validate(params), uuid.uuid4() if with_cursor else None)
    sql, _ = search_sql(shape)
    unseen = re.findall(r"\(SELECT %s::(\w+) AS anon_\d+\)", sql)
    name_only = bool(params) and set(params) - {"status"} <= {"name", "family", "given"}
    assert runs_prepared(shape) is name_only
    bounds = [k for k in values if k.startswith(("name", "family", "given"))]  # each word and its end
    assert unseen == (["VARCHAR"] * len(bounds) + ["INTEGER"] * 2 if name_only else [])
