"""No value at the api's boundary can break the requests that follow it.

A real api process with production settings (8 threads, a pool of 8) receives, in every input that
becomes a SQL parameter — each query parameter of every route in the route table, each field of
each JSON body, the conditional headers — extreme values: instants at the calendar's edges with
±14:00 offsets, dates and FHIR date prefixes at year 1 and 9999, NUL, a lone surrogate, integers
beyond bigint, a very long string. Each must get a 4xx (or a correct answer), never a 5xx, and
right after each the next 20 valid requests (authenticated reads of a patient this test created,
8 at a time) must all succeed: a value that reached the driver and failed mid-statement left a
broken connection in the pool, and later requests failed on it (issue 23).

The cases are generated from the route table and from each body model's fields, so a parameter or
field added later is poisoned too; ``test_the_cases_cover_every_parameter_and_body_field`` fails
when a body sample here misses a field.
"""

from __future__ import annotations

import copy
import json
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Union, get_args, get_origin
from urllib.parse import quote

import pytest
import requests
from pydantic import BaseModel

import shared.api.every_route  # noqa: F401  (registers every route; the api function loads them lazily)
from shared.http.routing import ROUTES, Route
from tests.fault.conftest import api_token

pytestmark = [pytest.mark.fault, pytest.mark.e2e]

VALID_AFTER_EACH = 20
PARALLEL = 8
TIMEOUT = 30
SURROGATE = "\ud800"

# (label, value). A query string or a header carries each as text; a JSON body carries the text ones
# in its string fields and the numbers in its number and boolean fields (anything else is only a
# type error, refused before it could reach the driver).
TEXT_EXTREMES: list[tuple[str, Any]] = [
    ("instant 0001-01-01T00:00:00+14:00", "0001-01-01T00:00:00+14:00"),
    ("instant 9999-12-31T23:59:59-14:00", "9999-12-31T23:59:59-14:00"),
    ("NUL", "nul\x00here"),
    ("lone surrogate", SURROGATE),
    ("5,000 characters", "x" * 5000),
]
NUMBER_EXTREMES: list[tuple[str, Any]] = [("2**63", 2**63), ("-10**30", -(10**30))]
QUERY_NUMBER = ("10**23", 10**23)
# For parameters and fields that take dates: the calendar's edges, plain and as FHIR search prefixes.
DATE_EXTREMES: list[tuple[str, Any]] = [
    ("date 0001-01-01", "0001-01-01"),
    ("date 9999-12-31", "9999-12-31"),
    ("FHIR le9999-12-31", "le9999-12-31"),
    ("FHIR gt9999-12-31", "gt9999-12-31"),
]
DATE_NAMES = ("date", "since", "onset", "abatement", "birth")

# Inputs that never become a SQL parameter (with why); every other one is poisoned.
NOT_SQL_PARAMETERS = {
    "_format": "content negotiation only",
    "mode": "CapabilityStatement mode, checked in Python",
    "include_raw": "a switch for what the response includes",
    "allow_duplicate": "a switch for the duplicate check",
}
NOT_STORED_FHIR = {  # elements of a FHIR Patient the view reads and drops (docs/fhir.md)
    "id", "meta", "text", "active", "identifier.use", "identifier.type.coding.version", "identifier.type.coding.display",
    "identifier.type.coding.userSelected", "name.use", "telecom.use", "telecom.rank", "address.use", "address.type",
    "communication.language.coding.version", "communication.language.coding.display",
    "communication.language.coding.userSelected", "communication.language.text", "communication.preferred",
}


@dataclass
class Case:
    label: str
    method: str
    path: str  # with its query string, already encoded
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)


def extremes_for(name: str, sample: Any = "") -> list[tuple[str, Any]]:
    """The extremes for a parameter or field called ``name`` whose valid value looks like ``sample``."""
    if isinstance(sample, (bool, int, float)):
        return NUMBER_EXTREMES
    dates = DATE_EXTREMES if any(n in name.lower() for n in DATE_NAMES) else []
    return TEXT_EXTREMES + dates


def query_text(value: Any) -> str:
    """A value percent-encoded as a browser would: a lone surrogate as the bytes UTF-8 would give it."""
    if value == SURROGATE:
        return "%ED%A0%80"
    return quote(str(value), safe="")


# --- bodies: a valid sample per body route, every field present -------------------------------------

def bodies(ids: dict[str, str]) -> dict[str, tuple[dict[str, Any], str]]:
    """endpoint → (a valid body naming every field of the route's model, content type)."""
    coding = {"system": "http://loinc.org", "code": "2345-7", "display": "Glucose"}
    person = {
        "name": {"family": "Poisonfam", "given": ["Poisongiv"], "prefix": ["Dr"], "suffix": ["Jr"]},
        "birth_date": "1980-01-02", "sex": "female",
        "identifiers": [{"system": "urn:fault:poison", "value": uuid.uuid4().hex, "type": "PI"}],
        "phone": "+14155550123", "email": "poison@example.org",
        "address": {"line": ["1 Main St"], "city": "Springfield", "state": "IL", "postal_code": "62701", "country": "US"},
        "preferred_language": "en", "timezone": "Europe/Madrid", "communication": {"email": True, "sms": False},
    }
    history = {"category": "condition", "code": coding, "status": "active", "onset": "2001-02-03",
               "abatement": "2002-03-04", "notes": "poison note"}
    fhir = {
        "resourceType": "Patient", "id": "client-id", "meta": {"versionId": "9"}, "text": {"status": "generated"},
        "identifier": [{"use": "usual", "system": "urn:fault:poison-fhir", "value": uuid.uuid4().hex,
                        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "version": "2.9",
                                             "code": "PI", "display": "Patient internal identifier", "userSelected": True}],
                                 "text": "internal"}}],
        "active": True, "name": [{"use": "official", "family": "Poisonfhir", "given": ["Kofi"], "prefix": ["Mr"], "suffix": ["II"]}],
        "telecom": [{"system": "phone", "value": "+14155550124", "use": "mobile", "rank": 1}],
        "gender": "male", "birthDate": "1990-07-08",
        "address": [{"use": "home", "type": "physical", "line": ["2 Main St"], "city": "Springfield", "state": "IL",
                     "postalCode": "62701", "country": "US"}],
        "communication": [{"language": {"coding": [{"system": "urn:ietf:bcp:47", "version": "1", "code": "en",
                                                    "display": "English", "userSelected": True}], "text": "English"},
                           "preferred": True}],
    }
    merge_patch = "application/merge-patch+json"
    return {
        "POST /patients": (person, "application/json"),
        "PATCH /patients/<uuid:patient_id>": ({**person, "status": "active"}, merge_patch),
        "POST /patients/<uuid:patient_id>/history": (history, "application/json"),
        "PATCH /patients/<uuid:patient_id>/history/<uuid:entry_id>": (history, merge_patch),
        "POST /patients/<uuid:patient_id>/orders": ({"code": coding, "priority": "routine", "notes": "poison order"},
                                                     "application/json"),
        "PATCH /orders/<uuid:order_id>": ({"code": coding, "priority": "urgent", "notes": "poison change"}, merge_patch),
        "POST /patients/<uuid:patient_id>/merge": ({"target_id": str(uuid.uuid4())}, "application/json"),
        "POST /patients/<uuid:patient_id>/duplicates/<uuid:candidate_id>/review": (
            {"decision": "merge", "survivor_id": str(uuid.uuid4())}, "application/json"),
        "POST /fhir/Patient": (fhir, "application/fhir+json"),
    }


def leaves(doc: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Paths of every scalar in a JSON document (list items by index)."""
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield from leaves(value, (*path, key))
    elif isinstance(doc, list):
        for n, value in enumerate(doc):
            yield from leaves(value, (*path, n))
    else:
        yield path


def _at(doc: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        doc = doc[step]
    return doc


def replaced(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    out = copy.deepcopy(doc)
    target = out
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return out


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if get_origin(annotation) in (list, Union) or type(annotation).__name__ == "UnionType":
        for arg in get_args(annotation):
            if (found := _model_in(arg)) is not None:
                return found
    return None


def model_fields(model: type[BaseModel], prefix: str = "") -> set[str]:
    """Dotted names of every field of a body model, nested models included (list items unindexed)."""
    names: set[str] = set()
    for name, info in model.model_fields.items():
        path = prefix + (info.alias or name)
        inner = _model_in(info.annotation)
        names |= model_fields(inner, path + ".") if inner else {path}
    return names


def _dotted(path: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in path if not isinstance(p, int))


# --- the cases -------------------------------------------------------------------------------------

def _path(route: Route, ids: dict[str, str]) -> str:
    return (route.path.replace("<uuid:patient_id>", ids["patient"]).replace("<patient_id>", ids["patient"])
            .replace("<uuid:entry_id>", ids["entry"]).replace("<uuid:order_id>", ids["order"])
            .replace("<uuid:message_id>", str(uuid.uuid4())).replace("<uuid:dead_letter_id>", str(uuid.uuid4()))
            .replace("<uuid:candidate_id>", str(uuid.uuid4())))


def query_cases(ids: dict[str, str]) -> list[Case]:
    samples = bodies(ids)
    cases = []
    for route in ROUTES:
        if route.query is None:
            continue
        body, content_type = samples.get(route.endpoint, (None, None))
        for name, info in route.query.model_fields.items():
            param = info.alias or name
            if param in NOT_SQL_PARAMETERS:
                continue
            for label, value in [*extremes_for(param), QUERY_NUMBER]:
                data = json.dumps(body).encode() if body is not None else None
                headers = {"Content-Type": content_type} if content_type else {}
                cases.append(Case(f"{route.endpoint} ?{param}=<{label}>", route.method,
                                  f"{_path(route, ids)}?{quote(param)}={query_text(value)}", data, headers))
    return cases


def body_cases(ids: dict[str, str]) -> list[Case]:
    cases = []
    for endpoint, (body, content_type) in bodies(ids).items():
        route = next(r for r in ROUTES if r.endpoint == endpoint)
        headers = {"Content-Type": content_type, **{h: 'W/"1"' for h in route.headers_in}}
        query = "?allow_duplicate=true" if endpoint in ("POST /patients", "POST /fhir/Patient") else ""
        for path in leaves(body):
            if endpoint == "POST /fhir/Patient" and any(_dotted(path).startswith(x) for x in NOT_STORED_FHIR):
                continue
            for label, value in extremes_for(_dotted(path), _at(body, path)):
                data = json.dumps(replaced(body, path, value)).encode()  # a surrogate is written as \ud800
                cases.append(Case(f"{endpoint} body {_dotted(path)}=<{label}>", route.method,
                                  _path(route, ids) + query, data, headers))
    return cases


def header_cases(ids: dict[str, str]) -> list[Case]:
    patient = f"/patients/{ids['patient']}"
    fhir_body = json.dumps(bodies(ids)["POST /fhir/Patient"][0]).encode()
    cases = []
    for label, value in [*extremes_for("header"), QUERY_NUMBER]:
        text = query_text(value)
        cases += [
            Case(f"PATCH /patients If-Match W/\"<{label}>\"", "PATCH", patient, b'{"sex": "other"}',
                 {"Content-Type": "application/merge-patch+json", "If-Match": f'W/"{text}"'}),
            Case(f"DELETE /patients If-Match W/\"<{label}>\"", "DELETE", patient, None, {"If-Match": f'W/"{text}"'}),
            Case(f"POST /fhir/Patient If-None-Exist identifier=urn:fault:poison-fhir|<{label}>", "POST", "/fhir/Patient",
                 fhir_body, {"Content-Type": "application/fhir+json", "If-None-Exist": f"identifier=urn:fault:poison-fhir|{text}"}),
            Case(f"GET /patients X-Request-Id <{label}>", "GET", patient, None, {"X-Request-Id": text}),
        ]
    return cases


# --- the run ---------------------------------------------------------------------------------------

class Api:
    """Requests to the api process, one keep-alive session per thread."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self.auth = {"Authorization": f"Bearer {token}"}
        self._local = threading.local()

    def session(self) -> requests.Session:
        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
        return self._local.session

    def send(self, case: Case) -> requests.Response:
        return self.session().request(case.method, self.url + case.path, data=case.body,
                                      headers={**self.auth, **case.headers}, timeout=TIMEOUT)

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        resp = self.session().post(self.url + path, json=body, headers=self.auth, timeout=TIMEOUT)
        assert resp.status_code == 201, resp.text
        return resp.json()

    def read_ok(self, patient_id: str) -> str | None:
        """None when the valid read succeeded, else what went wrong."""
        try:
            resp = self.session().get(f"{self.url}/patients/{patient_id}", headers=self.auth, timeout=TIMEOUT)
        except requests.RequestException as exc:
            return type(exc).__name__
        if resp.status_code != 200 or resp.json().get("id") != patient_id:
            return str(resp.status_code)
        return None


def _setup(api: Api) -> dict[str, str]:
    patient = api.post("/patients?allow_duplicate=true", {
        "name": {"family": "Poisoncheck", "given": ["Valid"]}, "birth_date": "1975-04-05",
        "identifiers": [{"system": "urn:fault:poison-check", "value": uuid.uuid4().hex}]})
    entry = api.post(f"/patients/{patient['id']}/history", {"category": "note", "notes": "check"})
    order = api.post(f"/patients/{patient['id']}/orders", {"code": {"system": "http://loinc.org", "code": "2345-7"}})
    return {"patient": patient["id"], "entry": entry["id"], "order": order["id"]}


def test_the_cases_cover_every_parameter_and_body_field():
    ids = {"patient": str(uuid.uuid4()), "entry": str(uuid.uuid4()), "order": str(uuid.uuid4())}
    samples = bodies(ids)
    assert set(samples) == {r.endpoint for r in ROUTES if r.body is not None}, "a body route without a sample here"
    for endpoint, (body, _content_type) in samples.items():
        route = next(r for r in ROUTES if r.endpoint == endpoint)
        assert route.body is not None
        sent = {_dotted(p) for p in leaves(body)}
        missing = {f for f in model_fields(route.body) if not any(s == f or s.startswith(f + ".") for s in sent)}
        assert not missing, f"{endpoint}: the sample body lacks {sorted(missing)}"
    labels = {c.label for c in query_cases(ids)}
    for route in ROUTES:
        for name, info in (route.query.model_fields.items() if route.query else []):
            param = info.alias or name
            assert param in NOT_SQL_PARAMETERS or any(label.startswith(f"{route.endpoint} ?{param}=") for label in labels)


# The cases in PARTS interleaved slices, each against its own api process and database: together every
# case once, as one test did, but units that `make test`'s workers run side by side (one took minutes).
PARTS = 4


def all_cases(ids: dict[str, str]) -> list[Case]:
    return query_cases(ids) + body_cases(ids) + header_cases(ids)


def test_the_parts_together_send_every_case_once():
    ids = {"patient": str(uuid.uuid4()), "entry": str(uuid.uuid4()), "order": str(uuid.uuid4())}
    cases = all_cases(ids)
    assert len(cases) > 500
    parts = [cases[part::PARTS] for part in range(PARTS)]
    assert sorted((c.label for part in parts for c in part)) == sorted(c.label for c in cases)


@pytest.mark.parametrize("part", range(PARTS))
def test_no_extreme_value_breaks_the_requests_that_follow(fault_run, fresh_database, part):
    proc = fault_run.start("api", {"DATABASE_URL": fresh_database, "THREADS": "8", "DB_POOL_SIZE": "8"},
                           ready_path="/readyz")
    api = Api(proc.url, api_token(fresh_database, "admin"))
    ids = _setup(api)
    fault_run.remember_phi("Poisoncheck", "Poisonfam", "Poisonfhir", "+14155550123", "poison@example.org")
    cases = all_cases(ids)[part::PARTS]
    failures: list[str] = []
    with ThreadPoolExecutor(PARALLEL) as pool:
        for case in cases:
            try:
                status = str(api.send(case).status_code)
            except requests.RequestException as exc:
                status = type(exc).__name__
            if not status.isdigit() or int(status) >= 500:
                failures.append(f"{case.label}: answered {status}")
            after = [r for r in pool.map(lambda _: api.read_ok(ids["patient"]), range(VALID_AFTER_EACH)) if r]
            if after:
                failures.append(f"after {case.label}: {len(after)} of {VALID_AFTER_EACH} valid reads failed ({sorted(set(after))})")
            if len(failures) >= 40:
                break  # the point is made; the rest would repeat it
    assert not failures, f"{len(failures)} failure(s):\n" + "\n".join(failures)
