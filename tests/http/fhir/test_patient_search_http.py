"""GET /fhir/Patient (searchset Bundles, paging) and GET /fhir/Patient/{id}/_history."""

from urllib.parse import parse_qs, urlsplit

from tests.conftest import auth
from tests.http.fhir.support import HOSTILE_HOST, audit_rows, fhir_base, fhir_ok, outcome, rest_patient, unique_family


def _path(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def _ids(bundle: dict) -> list[str]:
    return [e["resource"]["id"] for e in bundle.get("entry", [])]


def test_search_pages_follow_next_links_to_every_match(client, admin_token, make_token):
    token = make_token("patients:read")
    family = unique_family()
    made = {rest_patient(client, admin_token, name={"family": family, "given": [g]})["id"] for g in ("Ama", "Kwame", "Esi")}
    resp = client.get(f"/fhir/Patient?family={family}&_count=2", headers={**auth(token), **HOSTILE_HOST})
    first = fhir_ok(resp)
    assert first["type"] == "searchset" and first["total"] == 3 and len(first["entry"]) == 2
    assert "evil.example" not in resp.get_data(as_text=True) and resp.headers["Cache-Control"] == "no-store"
    links = {link["relation"]: link["url"] for link in first["link"]}
    assert links["self"] == f"{fhir_base()}/Patient?family={family}&_count=2"
    assert links["next"].startswith(f"{fhir_base()}/Patient?")
    query = parse_qs(urlsplit(links["next"]).query)
    assert query["family"] == [family] and query["_count"] == ["2"] and query["_cursor"][0]
    assert family not in query["_cursor"][0]  # the cursor carries an id, not the search terms
    assert all(e["fullUrl"] == f"{fhir_base()}/Patient/{e['resource']['id']}" for e in first["entry"])
    second = fhir_ok(client.get(_path(links["next"]), headers=auth(token)))
    assert second["total"] == 3 and len(second["entry"]) == 1
    assert "next" not in {link["relation"] for link in second["link"]}
    assert set(_ids(first)) | set(_ids(second)) == made
    for pid in made:
        assert len(audit_rows(pid, "patient.search")) == 1


def test_search_filters_name_given_gender_birthdate_identifier(client, admin_token, make_token):
    token = make_token("patients:read")
    family = unique_family()
    a = rest_patient(client, admin_token, name={"family": f"García {family}", "given": ["José"]}, sex="male", birth_date="1970-05-06")
    b = rest_patient(client, admin_token, name={"family": family, "given": ["Lucía"]}, sex="female", birth_date="1985-01-31")

    def search(query: str) -> list[str]:
        return _ids(fhir_ok(client.get(f"/fhir/Patient?{query}", headers=auth(token))))

    assert set(search(f"name={family}")) == {a["id"], b["id"]}
    assert search(f"name=garcia {family[:8]}") == [a["id"]]  # accents and case folded, word prefixes
    assert search(f"family={family}&given=luc") == [b["id"]]
    assert search(f"family={family}&gender=female") == [b["id"]]
    assert search(f"family={family}&birthdate=1970-05-06") == [a["id"]]
    assert search(f"family={family}&birthdate=1985") == [b["id"]]
    assert search(f"family={family}&birthdate=1985-02") == []
    assert set(search(f"family={family}&birthdate=ge1970&birthdate=lt1986")) == {a["id"], b["id"]}
    assert search(f"family={family}&birthdate=gt1970-05-06") == [b["id"]]
    ident = a["identifiers"][-1]
    assert search(f"identifier=urn:test:hospital|{ident['value']}") == [a["id"]]
    assert search(f"identifier={ident['value']}") == [a["id"]]
    assert search(f"identifier=urn:test:other|{ident['value']}") == []
    assert search(f"identifier=urn:patient-mgt:mrn|{b['mrn']}") == [b["id"]]
    empty = fhir_ok(client.get(f"/fhir/Patient?family={family}&gender=other", headers=auth(token)))
    assert empty["total"] == 0 and "entry" not in empty


def test_birthdate_at_the_edges_of_the_calendar_is_answered_correctly(client, admin_token, make_token):
    """Year 9999's last day has no day after it and year 0001's first none before: the bounds are
    open there (or empty), never a date computed past the calendar's end."""
    token = make_token("patients:read")
    family = unique_family()
    a = rest_patient(client, admin_token, name={"family": family, "given": ["Abena"]}, birth_date="1970-05-06")

    def search(birthdates: str) -> list[str]:
        query = "&".join(f"birthdate={b}" for b in birthdates.split())
        return _ids(fhir_ok(client.get(f"/fhir/Patient?family={family}&{query}", headers=auth(token))))

    for everyone in ("le9999-12-31", "lt9999-12-31", "le9999", "le9999-12", "ge0001-01-01", "gt0001-01-01", "ge0001",
                     "ge0001-01-01 le9999-12-31"):
        assert search(everyone) == [a["id"]], everyone
    for nobody in ("9999-12-31", "9999", "9999-12", "gt9999-12-31", "gt9999", "ge9999-12-31", "0001-01-01", "0001",
                   "lt0001-01-01", "le0001-01-01", "lt0001", "gt9999-12-31 lt2000", "ge9999-12-31 le9999-12-31"):
        assert search(nobody) == [], nobody
    for invalid in ("0000", "le0000-12-31", "9999-13", "gt10000"):
        outcome(client.get(f"/fhir/Patient?family={family}&birthdate={invalid}", headers=auth(token)), 400, "invalid")


def test_unsupported_or_malformed_parameters_are_400(client, make_token):
    token = make_token("patients:read")
    # (_sort=family, three birthdates, identifier=|123 and _count=0 were refused before: they are FHIR search)
    for query, field in (("name:exact=x", "name:exact"), ("_sort=gender", "_sort"), ("_sort=family,-_lastUpdated", "_sort"),
                         ("birthdate=ne1970", None), ("birthdate=1970-13", None), ("birthdate=1970,", "birthdate"),
                         ("gender=robot", "gender"), ("gender=male,robot", "gender"), ("identifier=|", None),
                         ("_count=-1", "_count"), ("_summary=text", "_summary"), ("_total=some", "_total"),
                         ("_lastUpdated=yesterday", "_lastUpdated"),
                         ("_count=many", "_count"), ("_cursor=bm90LWEtY3Vyc29y", None), ("name=%20-%20", "name")):
        doc = outcome(client.get(f"/fhir/Patient?{query}", headers=auth(token)), 400, "invalid")
        if field:
            assert any(field in i.get("diagnostics", "") for i in doc["issue"][1:]), (query, doc)


def test_count_above_the_maximum_is_capped(client, admin_token, make_token):
    family = unique_family()
    rest_patient(client, admin_token, name={"family": family, "given": ["Yaw"]})
    doc = fhir_ok(client.get(f"/fhir/Patient?family={family}&_count=5000", headers=auth(make_token("patients:read"))))
    assert doc["total"] == 1 and len(doc["entry"]) == 1


def test_history_lists_every_version_newest_first(client, admin_token, make_token):
    p = rest_patient(client, admin_token)
    changed = client.patch(f"/patients/{p['id']}", json={"phone": "+14155550111"},
                           headers={**auth(admin_token), "If-Match": 'W/"1"', "Content-Type": "application/merge-patch+json"})
    assert changed.status_code == 200, changed.get_data(as_text=True)
    doc = fhir_ok(client.get(f"/fhir/Patient/{p['id']}/_history", headers=auth(make_token("patients:read"))))
    assert doc["type"] == "history" and doc["total"] == 2
    newest, oldest = (e["resource"] for e in doc["entry"])
    assert (newest["meta"]["versionId"], oldest["meta"]["versionId"]) == ("2", "1")
    assert {"system": "phone", "value": "+14155550111"} in newest["telecom"] and "telecom" not in oldest
    assert [e["request"]["method"] for e in doc["entry"]] == ["PUT", "POST"]
    assert [e["response"]["etag"] for e in doc["entry"]] == ['W/"2"', 'W/"1"']
    page = fhir_ok(client.get(f"/fhir/Patient/{p['id']}/_history?_count=1", headers=auth(admin_token)))
    nxt = next(link["url"] for link in page["link"] if link["relation"] == "next")
    rest = fhir_ok(client.get(_path(nxt), headers=auth(admin_token)))
    assert [e["resource"]["meta"]["versionId"] for e in page["entry"] + rest["entry"]] == ["2", "1"]
    assert len(audit_rows(p["id"], "patient.versions.read")) == 3
