"""A real functions-framework ``notify`` process on 127.0.0.1, sending through moto's server (or the console
outbox), with events posted over HTTP as the broker would."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
from cloudevents.conversion import to_binary, to_structured

from tests.support.notify import (
    AWS_ENV,
    NO_QUIET_HOURS,
    PORTAL,
    RESULT_VALUE,
    TEST_NAME,
    create_final_result,
    create_patient,
    notification_rows,
    notify_env,
    outbox_cloudevent,
)

pytestmark = pytest.mark.e2e


def post(url: str, event, mode=to_binary) -> requests.Response:  # noqa: ANN001
    headers, body = mode(event)
    return requests.post(url, headers=headers, data=body, timeout=30)


def test_the_notify_process_sends_once_retries_while_the_provider_is_down_and_speaks_spanish(start_fn, moto):
    fn = start_fn("notify", env=notify_env(moto.url))

    # A final result for an opted-in patient, delivered three times: one e-mail, one SMS.
    patient = create_patient()
    event_id = create_final_result(patient.id)
    event = outbox_cloudevent(event_id)
    assert [post(fn.url, event, mode).status_code for mode in (to_binary, to_structured, to_binary)] == [200, 200, 200]
    [email] = moto.emails_to(patient.email)
    [sms] = moto.sms_to(patient.phone)
    assert email["subject"] == "Your lab results are ready" and "Your lab results are ready." in email["body"]
    assert sms["message"] == f"Your lab results are ready. View them securely in the patient portal: {PORTAL}"
    for text in (email["subject"], email["body"], sms["message"]):
        assert RESULT_VALUE not in text and TEST_NAME not in text
    assert [r.status for r in notification_rows(event_id=event_id)] == ["sent", "sent"]

    # The provider goes down: 5xx (the broker redelivers); back up: sent exactly once.
    spanish = create_patient(language="es")
    event_es = outbox_cloudevent(create_final_result(spanish.id))
    moto.stop()
    try:
        assert post(fn.url, event_es).status_code == 503
    finally:
        moto.start()
    assert moto.emails_to(spanish.email) == [] and moto.sms_to(spanish.phone) == []
    assert post(fn.url, event_es).status_code == 200
    assert post(fn.url, event_es).status_code == 200
    [email_es] = moto.emails_to(spanish.email)
    [sms_es] = moto.sms_to(spanish.phone)
    assert email_es["subject"] == "Sus resultados de laboratorio están listos"
    assert sms_es["message"].startswith("Ya puede consultar sus resultados de laboratorio")

    # An opted-out patient: nothing sent, skipped rows.
    opted_out = create_patient(email_opt_in=False, sms_opt_in=False)
    out_id = create_final_result(opted_out.id)
    assert post(fn.url, outbox_cloudevent(out_id)).status_code == 200
    assert moto.emails_to(opted_out.email) == [] and moto.sms_to(opted_out.phone) == []
    assert {(r.status, r.reason) for r in notification_rows(event_id=out_id)} == {("skipped", "no_consent")}

    logs = fn.logs()
    assert "notification attempt recorded" in logs
    for p in (patient, spanish):
        for value in (p.email, p.phone, p.given, p.family):
            assert value not in logs


def test_the_console_provider_writes_the_messages_as_files(start_fn, tmp_path: Path):
    data_dir = tmp_path / "data"
    fn = start_fn("notify", env={**AWS_ENV, **NO_QUIET_HOURS, "NOTIFY_PROVIDER": "console",
                                   "DATA_DIR": str(data_dir), "PORTAL_URL": PORTAL})
    patient = create_patient()
    event_id = create_final_result(patient.id)
    assert post(fn.url, outbox_cloudevent(event_id)).status_code == 200

    files = sorted(p.name for p in (data_dir / "outbox").iterdir())
    assert len(files) == 2 and files[0].endswith((".eml", ".sms.txt")) and files[1].endswith((".eml", ".sms.txt"))
    [eml] = [data_dir / "outbox" / f for f in files if f.endswith(".eml")]
    [sms] = [data_dir / "outbox" / f for f in files if f.endswith(".sms.txt")]
    assert f"To: {patient.email}" in eml.read_text() and f"To: {patient.phone}" in sms.read_text()
    assert RESULT_VALUE not in eml.read_text() + sms.read_text()
    rows = notification_rows(event_id=event_id)
    assert {(r.status, r.provider) for r in rows} == {("sent", "console")}
    assert {r.provider_message_id for r in rows} == {f.split(".")[0] for f in files}
    assert patient.email not in fn.logs() and patient.phone not in fn.logs()
