"""The console's LIS pages against the real ingest: overview numbers, filters, paging, a message's
page, raw segments (scope and audit), and Replay through the API's service."""

import html
import re
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa

from shared.auth import SYSTEM_CLI
from shared.db import unit_of_work
from shared.models import AuditEntry, LisMessage
from shared.services.merge import merge_patients
from tests.conftest import auth
from tests.support.lis_ingest import Feed, hl7, one


def _ids(html: str) -> list[str]:
    return re.findall(r'<tr data-id="([0-9a-f-]{36})">', html)


def _last_audit(action: str) -> AuditEntry:
    with unit_of_work() as uow:
        return uow.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == action)
                                   .order_by(AuditEntry.id.desc()).limit(1)).one()


def test_overview_numbers_are_the_apis(console, client, make_token):
    token = make_token("lis:read")
    f = Feed()
    one(hl7(f.msh("ORU^R01", "20260101110000"), f.pid("A")))  # quarantined: no OBR
    console.sign_in(token)
    page = console.get("/console/").text
    status = client.get("/lis/status", headers=auth(token)).json
    for s, total in status["counts"]["total"].items():
        row = re.search(rf'<tr data-status="{s}">.*?class="num day">([\d,]+)</td>\s*<td class="num total">([\d,]+)</td>',
                        page, re.S)
        assert row, s
        assert (int(row.group(1).replace(",", "")), int(row.group(2).replace(",", ""))) == \
               (status["counts"]["last_24h"][s], total)
    assert "<svg" in page and 'class="bar"' in page


def test_the_list_filters_by_warning_reason_facility_and_time_and_pages_by_keyset(console, make_token):
    console.sign_in(make_token("lis:read"))
    f, other = Feed(), Feed()
    since = datetime.now(timezone.utc) - timedelta(seconds=1)
    q1 = one(hl7(f.msh("ORU^R01", "20260101110000"), f.pid("A")))
    q2 = one(hl7(f.msh("ORU^R01", "20260101110100"), f.pid("B")))
    warned = one(hl7(f.msh("ADT^A04", "20260101110200"), f.pid("C") + "|||||5550100"))  # no country code
    one(hl7(other.msh("ORU^R01", "20260101110000"), other.pid("A")))
    with unit_of_work() as uow:
        assert "not_e164:PID-13" in uow.session.get(LisMessage, warned.message_id).warnings
    base = {"facility": f.facility, "since": since.strftime("%Y-%m-%dT%H:%M:%S")}

    page = console.get("/console/lis/messages", query_string={**base, "reason": "missing_segment:OBR", "limit": 1})
    assert page.status_code == 200 and _ids(page.text) == [str(q2.message_id)]
    older = re.search(r'<a rel="next" href="([^"]+)"', page.text).group(1).replace("&amp;", "&")
    assert _ids(console.get(older).text) == [str(q1.message_id)]

    assert _ids(console.get("/console/lis/messages", query_string={**base, "warning": "not_e164:PID-13"}).text) == \
           [str(warned.message_id)]
    assert set(_ids(console.get("/console/lis/messages", query_string={**base, "status": "quarantined"}).text)) == \
           {str(q1.message_id), str(q2.message_id)}
    until = (datetime.now(timezone.utc) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    everything = _ids(console.get("/console/lis/messages", query_string={**base, "until": until, "status": ""}).text)
    assert everything == [str(warned.message_id), str(q2.message_id), str(q1.message_id)]
    assert _ids(console.get("/console/lis/messages", query_string={**base, "until": since.strftime("%Y-%m-%dT%H:%M:%S")}).text) == []
    bad = console.get("/console/lis/messages", query_string={"since": "yesterday"})
    assert bad.status_code == 422 and "yesterday" not in bad.text and "<code>since</code>" in bad.text


def test_raw_segments_need_lis_admin_and_each_view_is_audited(console, make_token):
    f = Feed()
    segments = [f.msh("ORU^R01", "20260101110000"), f.pid("A", name="ZWICKY^HEIDI")]
    q = one(hl7(*segments))
    reader = console
    reader.sign_in(make_token("lis:read"))
    plain = reader.get(f"/console/lis/messages/{q.message_id}")
    assert plain.status_code == 200 and "ZWICKY" not in plain.text and "show-raw" not in plain.text
    assert reader.get(f"/console/lis/messages/{q.message_id}?raw=true").status_code == 403

    from tests.http.console.conftest import Console  # noqa: PLC0415

    admin = Console(console.client.application)
    name = f"raw-{f.tag}"
    admin.sign_in(make_token("lis:read", "lis:admin", name=name))
    assert 'id="show-raw"' in admin.get(f"/console/lis/messages/{q.message_id}").text
    raw = admin.get(f"/console/lis/messages/{q.message_id}?raw=true")
    assert raw.status_code == 200
    lines = re.findall(r"<li>(.*?)</li>", raw.text.split('id="raw"')[1].split("</ol>")[0])
    assert [html.unescape(re.sub(r"<[^>]+>", "", line)) for line in lines] == segments  # one segment per line
    assert '<span class="seg">PID</span>' in raw.text and '<span title="PID-5">ZWICKY</span>' in raw.text
    assert '<span class="sep-component">^</span>' in raw.text
    entry = _last_audit("lis.message.read")
    assert entry.principal == name and entry.details == {"messages": 1, "raw": True}


def test_replay_after_the_fix_changes_the_status_and_shows_the_outcome(console, make_token):
    f = Feed()
    a = one(hl7(f.msh("ADT^A04", "20260101100000"), f.pid("A")))
    b = one(hl7(f.msh("ADT^A04", "20260101100100"), f.pid("B")))
    q = one(hl7(f.msh("ORU^R01", "20260101110000"), f.pid("A", extra=f"~{f.id('B')}^^^{f.facility}^MR"),
                f"OBR|1|{f.id('ORD1')}||GLU^G^L", "OBX|1|NM|GLU^G^L||5|mmol/L|||||F"))
    assert (q.status, q.reason) == ("quarantined", "identifier_conflict")
    reader = console
    reader.sign_in(make_token("lis:read"))
    page = reader.get(f"/console/lis/messages/{q.message_id}")
    assert 'id="replay"' not in page.text and "lis:admin" in page.text
    assert reader.post_form(f"/console/lis/messages/{q.message_id}", f"/console/lis/messages/{q.message_id}/replay"
                            ).status_code == 403

    from tests.http.console.conftest import Console  # noqa: PLC0415

    admin = Console(console.client.application)
    name = f"replay-{f.tag}"
    admin.sign_in(make_token("lis:read", "lis:admin", "patients:read", name=name))
    assert 'id="replay"' in admin.get(f"/console/lis/messages/{q.message_id}").text
    with unit_of_work() as uow:
        merge_patients(uow, SYSTEM_CLI, b.patient_id, a.patient_id)  # what the quarantine needed
    done = admin.post_form(f"/console/lis/messages/{q.message_id}", f"/console/lis/messages/{q.message_id}/replay")
    assert done.status_code == 303 and done.headers["Location"].endswith(f"/console/lis/messages/{q.message_id}?outcome=replayed")
    shown = admin.get(done.headers["Location"])
    assert 'id="outcome"' in shown.text and "now <strong>processed</strong>" in shown.text
    history = shown.text.split('id="history"')[1].split("</ol>")[0]
    assert "received" in history and "quarantined" in history and f"by {name}" in history and "processed" in history
    assert f'href="/console/patients/{a.patient_id}"' in shown.text and "GLU" in shown.text
    with unit_of_work() as uow:
        row = uow.session.get(LisMessage, q.message_id)
        assert (row.status, row.patient_id) == ("processed", a.patient_id)
    entry = _last_audit("lis.message.replay")
    assert entry.principal == name and entry.details["from"] == "quarantined" and entry.details["to"] == "processed"
    patient = admin.get(f"/console/patients/{a.patient_id}")
    assert patient.status_code == 200 and f'id="order-' in patient.text and "mmol/L" in patient.text
    again = admin.post_form(f"/console/lis/messages/{q.message_id}", f"/console/lis/messages/{q.message_id}/replay")
    assert again.headers["Location"].endswith("?outcome=not_replayed")
