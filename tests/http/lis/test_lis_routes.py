"""Operator routes in the api function: /lis/status, /lis/messages, replay."""

import base64
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa

from shared.auth import SYSTEM_CLI
from shared.db import unit_of_work
from shared.models import AuditEntry
from shared.services.merge import merge_patients
from tests.conftest import auth
from tests.support.lis_ingest import Feed, hl7, one


def _conflicting(f: Feed):
    """Two patients, and a result naming both: quarantined until they are merged."""
    a = one(hl7(f.msh("ADT^A04", "20260101100000"), f.pid("A")))
    b = one(hl7(f.msh("ADT^A04", "20260101100100"), f.pid("B")))
    q = one(hl7(f.msh("ORU^R01", "20260101110000"), f.pid("A", extra=f"~{f.id('B')}^^^{f.facility}^MR"),
                f"OBR|1|{f.id('ORD1')}||GLU^G^L", "OBX|1|NM|GLU^G^L||5|mmol/L|||||F"))
    assert q.status == "quarantined"
    return a, b, q


def test_status_counts_and_last_message(client, make_token):
    token = make_token("lis:read")
    before = client.get("/lis/status", headers=auth(token)).json
    f = Feed()
    q = one(hl7(f.msh("ORU^R01", "20260101110000"), f.pid("A")))  # no OBR: quarantined
    after = client.get("/lis/status", headers=auth(token))
    assert after.status_code == 200
    body = after.json
    for window in ("last_24h", "total"):
        assert body["counts"][window]["quarantined"] == before["counts"][window]["quarantined"] + 1
        assert body["counts"][window]["processed"] == before["counts"][window]["processed"]
    assert set(body["lag_seconds"]) == {"p50", "p95", "max", "messages"}
    assert datetime.fromisoformat(body["last_message_at"]) >= datetime.now(timezone.utc) - timedelta(minutes=5)
    assert q.reason == "missing_segment:OBR"


def test_messages_are_listed_filtered_and_paged(client, make_token):
    token = make_token("lis:read")
    f = Feed()
    since = datetime.now(timezone.utc) - timedelta(seconds=1)
    first = one(hl7(f.msh("ORU^R01", "20260101110000"), f.pid("A")))
    second = one(hl7(f.msh("ORU^R01", "20260101110100"), f.pid("B")))
    params = {"status": "quarantined", "type": "ORU", "since": since.isoformat(), "limit": 1}
    page = client.get("/lis/messages", query_string=params, headers=auth(token))
    assert page.status_code == 200
    [newest] = page.json["items"]
    assert newest["id"] == str(second.message_id) and newest["raw_base64"] is None
    assert newest["error_code"] == "missing_segment:OBR" and newest["message_type"] == "ORU^R01"
    nxt = client.get("/lis/messages", query_string={**params, "cursor": page.json["next_cursor"]}, headers=auth(token))
    assert nxt.json["items"][0]["id"] == str(first.message_id)
    exact = client.get("/lis/messages", query_string={"type": "ORU^R01", "since": since.isoformat()}, headers=auth(token))
    assert {i["id"] for i in exact.json["items"]} >= {str(first.message_id), str(second.message_id)}
    none = client.get("/lis/messages", query_string={"type": "ADT", "since": since.isoformat()}, headers=auth(token))
    assert str(first.message_id) not in {i["id"] for i in none.json["items"]}
    bad = client.get("/lis/messages", query_string={"status": "lost"}, headers=auth(token))
    assert bad.status_code == 422


def test_raw_content_needs_lis_admin_and_is_audited(client, make_token):
    f = Feed()
    raw = hl7(f.msh("ORU^R01", "20260101110000"), f.pid("A"))
    q = one(raw)
    reader, admin = make_token("lis:read"), make_token("lis:admin", "lis:read")
    assert client.get(f"/lis/messages/{q.message_id}", query_string={"include_raw": "true"},
                      headers=auth(reader)).status_code == 403
    plain = client.get(f"/lis/messages/{q.message_id}", headers=auth(reader))
    assert plain.status_code == 200 and plain.json["raw_base64"] is None and plain.json["raw_size"] == len(raw)
    full = client.get(f"/lis/messages/{q.message_id}", query_string={"include_raw": "true"}, headers=auth(admin))
    assert base64.b64decode(full.json["raw_base64"]) == raw
    with unit_of_work() as uow:
        entry = uow.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "lis.message.read")
                                    .order_by(AuditEntry.id.desc()).limit(1)).one()
    assert entry.details == {"messages": 1, "raw": True}


def test_replay_needs_lis_admin_and_is_idempotent(client, make_token):
    f = Feed()
    a, b, q = _conflicting(f)
    reader, admin = make_token("lis:read"), make_token("lis:admin")
    assert client.post(f"/lis/messages/{q.message_id}/replay", headers=auth(reader)).status_code == 403
    still = client.post(f"/lis/messages/{q.message_id}/replay", headers=auth(admin))
    assert still.status_code == 200
    assert (still.json["replayed"], still.json["message"]["status"]) == (True, "quarantined")
    with unit_of_work() as uow:
        merge_patients(uow, SYSTEM_CLI, b.patient_id, a.patient_id)
    done = client.post(f"/lis/messages/{q.message_id}/replay", headers=auth(admin))
    assert (done.json["replayed"], done.json["message"]["status"]) == (True, "processed")
    assert done.json["message"]["patient_id"] == str(a.patient_id) and done.json["message"]["attempts"] == 3
    again = client.post(f"/lis/messages/{q.message_id}/replay", headers=auth(admin))
    assert (again.json["replayed"], again.json["message"]["attempts"]) == (False, 3)


def test_replay_of_an_unknown_message_is_404(client, make_token):
    response = client.post("/lis/messages/00000000-0000-4000-8000-000000000000/replay", headers=auth(make_token("lis:admin")))
    assert response.status_code == 404
