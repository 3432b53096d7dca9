"""The poison suite's extreme values (tests/fault/test_poison_api.py) in every FHIR search parameter,
through the test client: each is answered (2xx or 4xx OperationOutcome), never a 500. The fault
suite repeats this against a real process and checks the requests that follow."""

from urllib.parse import quote

import shared.api.every_route  # noqa: F401  (registers every route; the api function loads them lazily)
from shared.http.routing import ROUTES
from tests.conftest import auth
from tests.fault.test_poison_api import NOT_SQL_PARAMETERS, QUERY_NUMBER, extremes_for, query_text


def test_extreme_values_in_fhir_search_parameters_are_answered(client, admin_token):
    failures, tried = [], 0
    for route in ROUTES:
        if not route.path.startswith("/fhir/") or route.method != "GET" or route.query is None or "<" in route.path:
            continue
        for name, info in route.query.model_fields.items():
            param = info.alias or name
            if param in NOT_SQL_PARAMETERS:
                continue
            for label, value in [*extremes_for(param), QUERY_NUMBER]:
                resp = client.get(f"{route.path}?{quote(param)}={query_text(value)}", headers=auth(admin_token))
                tried += 1
                if resp.status_code >= 500 or resp.mimetype != "application/fhir+json":
                    failures.append((route.path, param, label, resp.status_code))
    assert tried > 100 and not failures
