"""GET /patients: each parameter, folding, status, cursor pages, bad parameters, audit."""

import uuid

import sqlalchemy as sa

from shared.db import unit_of_work
from shared.models import AuditEntry
from tests.conftest import auth
from tests.http.registry.support import assert_problem, error_fields, patient_body


def tag() -> str:
    return "q" + uuid.uuid4().hex[:9]


def register(client, token, **overrides):
    resp = client.post("/patients?allow_duplicate=true", json=patient_body(**overrides), headers=auth(token))
    assert resp.status_code == 201, resp.get_data(as_text=True)
    return resp.get_json()


def ids(client, token, query):
    resp = client.get("/patients", query_string=query, headers=auth(token))
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return [p["id"] for p in resp.get_json()["items"]]


def test_name_search_folds_case_and_accents_and_matches_prefixes(client, admin_token):
    t = tag()
    garcia = register(client, admin_token, name={"family": f"García-{t}", "given": ["Zoë"]})["id"]
    muller = register(client, admin_token, name={"family": f"Müller {t}", "given": ["Jörg"]})["id"]
    assert ids(client, admin_token, {"name": f"garcia {t}"}) == [garcia]
    assert ids(client, admin_token, {"name": f"MULLER {t}"}) == [muller]
    assert ids(client, admin_token, {"name": f"GARC {t[:6]}"}) == [garcia]
    assert ids(client, admin_token, {"name": f"zoe {t}"}) == [garcia]  # a given name
    assert ids(client, admin_token, {"name": f"joerg {t}"}) == []
    assert sorted(ids(client, admin_token, {"name": t})) == sorted([garcia, muller])
    assert ids(client, admin_token, {"family": f"garcia{t}"}) == [garcia]  # the whole folded family
    assert ids(client, admin_token, {"family": t, "given": "jor"}) == [muller]
    assert ids(client, admin_token, {"family": "zoe", "name": t}) == []  # zoe is a given name


def test_exact_parameters(client, admin_token):
    t = tag()
    phone = "+1555" + str(uuid.uuid4().int)[:7]
    email = f"{t}@Example.org"
    ident = {"system": "urn:test:insurer", "value": f"INS-{t}"}
    target = register(client, admin_token, name={"family": f"Exact-{t}", "given": ["Ana"]}, birth_date="1944-04-04",
                      phone=phone, email=email, identifiers=[ident])
    other = register(client, admin_token, name={"family": f"Exact-{t}", "given": ["Ana"]}, birth_date="1944-04-05")
    pid = target["id"]
    assert ids(client, admin_token, {"name": t, "birth_date": "1944-04-04"}) == [pid]
    assert ids(client, admin_token, {"identifier": f"urn:test:insurer|INS-{t}"}) == [pid]
    assert ids(client, admin_token, {"identifier": f"INS-{t}"}) == [pid]
    assert ids(client, admin_token, {"identifier": f"urn:other|INS-{t}"}) == []
    assert ids(client, admin_token, {"mrn": target["mrn"]}) == [pid]
    assert ids(client, admin_token, {"identifier": f"urn:patient-mgt:mrn|{other['mrn']}"}) == [other["id"]]
    assert ids(client, admin_token, {"phone": phone}) == [pid]
    assert ids(client, admin_token, {"email": email.upper()}) == [pid]


def test_status_filter_excludes_merged_unless_asked(client, admin_token):
    t = tag()
    a = register(client, admin_token, name={"family": f"Stat-{t}", "given": ["A"]})["id"]
    b = register(client, admin_token, name={"family": f"Stat-{t}", "given": ["B"]})["id"]
    c = register(client, admin_token, name={"family": f"Stat-{t}", "given": ["C"]})["id"]
    assert client.delete(f"/patients/{b}", headers={**auth(admin_token), "If-Match": 'W/"1"'}).status_code == 204
    assert client.post(f"/patients/{c}/merge", json={"target_id": a}, headers=auth(admin_token)).status_code == 200
    assert sorted(ids(client, admin_token, {"name": t})) == sorted([a, b])
    assert ids(client, admin_token, {"name": t, "status": "merged"}) == [c]
    assert ids(client, admin_token, {"name": t, "status": "inactive"}) == [b]
    assert sorted(ids(client, admin_token, {"name": t, "status": "active,inactive,merged"})) == sorted([a, b, c])


def test_cursor_pages_are_stable_complete_and_opaque(client, admin_token):
    t = tag()
    created = [register(client, admin_token, name={"family": f"Page-{t}", "given": [g]})["id"] for g in "ABCDE"]
    seen, query, pages = [], {"name": t, "limit": 2}, 0
    while True:
        resp = client.get("/patients", query_string=query, headers=auth(admin_token)).get_json()
        seen += [p["id"] for p in resp["items"]]
        pages += 1
        if resp["next_cursor"] is None:
            break
        assert t not in resp["next_cursor"] and "page" not in resp["next_cursor"].lower()
        query = {**query, "cursor": resp["next_cursor"]}
    assert pages == 3 and sorted(seen) == sorted(created) and len(set(seen)) == 5
    assert seen == sorted(created)  # same family: the page order is (family_norm, id)


def test_bad_parameters_are_422_naming_the_parameter(client, admin_token):
    for query, field in [({"limit": 100000}, "limit"), ({"limit": 0}, "limit"), ({"cursor": "garbage"}, "cursor"),
                         ({"birth_date": "2023-02-30"}, "birth_date"), ({"status": "gone"}, "status"),
                         ({"mrn": "12345"}, "mrn"), ({"identifier": "a|b|c"}, "identifier"), ({"nme": "x"}, "nme")]:
        doc = assert_problem(client.get("/patients", query_string=query, headers=auth(admin_token)), 422)
        assert error_fields(doc) == {field}, query


def test_search_is_audited_with_the_returned_ids_and_parameter_names_only(client, admin_token):
    t = tag()
    pid = register(client, admin_token, name={"family": f"Aud-{t}", "given": ["Eve"]})["id"]
    assert ids(client, admin_token, {"name": t, "birth_date": "1979-11-30"}) == [pid]
    with unit_of_work() as uow:
        row = uow.session.execute(sa.select(AuditEntry).where(AuditEntry.action == "patient.search",
                                                              AuditEntry.patient_ids.contains([uuid.UUID(pid)]))).scalar_one()
    assert row.details == {"params": ["birth_date", "name"], "returned": 1}
    assert t not in str(row.details)
