"""AwsProvider against moto's SES v2 / SNS server on 127.0.0.1: what is sent, and how it fails.

No PostgreSQL needed. moto records every message; ``GET /moto-api/data.json`` reads them back
(moto keeps the HTML part as the body when an e-mail has both parts).
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator

import pytest
from moto.server import ThreadedMotoServer

from shared.notify import AwsProvider, PermanentProviderError, TransientProviderError
from shared.notify.render import render

REGION = "us-east-1"
SENDER = "no-reply@lab.example.org"
PATIENT_EMAIL = "xiomara.quill@example.org"
PATIENT_PHONE = "+34600111222"
PORTAL = "https://portal.example.org/lab"
CONTEXT = {"given_name": "Xiomarita", "facility_name": "Quillfeather Clinic", "portal_url": PORTAL}


def _start_server() -> tuple[ThreadedMotoServer, str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return server, f"http://{host}:{port}"


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AWS_ACCESS_KEY_ID", "testing")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        mp.setenv("AWS_DEFAULT_REGION", REGION)
        for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SESV2", "AWS_ENDPOINT_URL_SNS"):
            mp.delenv(var, raising=False)
        mp.setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config")
        mp.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials")
        server, url = _start_server()
        try:
            yield url
        finally:
            server.stop()


@pytest.fixture()
def moto(moto_url: str) -> str:
    """A clean moto with the sender identity verified."""
    urllib.request.urlopen(urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST"), timeout=10).close()
    import boto3

    boto3.client("sesv2", region_name=REGION, endpoint_url=moto_url).create_email_identity(EmailIdentity=SENDER)
    return moto_url


def _sent(url: str) -> dict:
    with urllib.request.urlopen(f"{url}/moto-api/data.json", timeout=10) as response:
        data = json.load(response)
    return {"email": data["ses"]["Message"], "sms": data["sns"]["SMS"]}


def test_email_goes_out_as_rendered(moto: str) -> None:
    rendered = render("results_ready", "email", "es", CONTEXT)
    message_id = AwsProvider(REGION, endpoint_url=moto).send_email(PATIENT_EMAIL, rendered, from_address=SENDER)

    [message] = _sent(moto)["email"]
    assert message["id"] == message_id
    assert message["source"] == SENDER
    assert message["destinations"]["ToAddresses"] == [PATIENT_EMAIL]
    assert message["subject"] == "Sus resultados de laboratorio están listos"
    assert message["body"] == rendered.html  # exactly what was rendered, nothing added
    assert f'href="{PORTAL}"' in message["body"]
    assert "Xiomarita" not in message["subject"]


def test_sms_goes_out_as_rendered(moto: str) -> None:
    rendered = render("results_ready", "sms", "es-MX", CONTEXT)
    message_id = AwsProvider(REGION, endpoint_url=moto).send_sms(PATIENT_PHONE, rendered)

    [sms] = _sent(moto)["sms"]
    assert sms["message_id"] == message_id
    assert sms["phone_number"] == PATIENT_PHONE
    assert sms["message"] == rendered.text
    assert sms["message"].endswith(PORTAL)
    assert "Xiomarita" not in sms["message"] and "Quillfeather" not in sms["message"]


def test_aws_endpoint_url_from_the_environment_is_honoured(moto: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto)
    provider = AwsProvider(REGION)  # no explicit endpoint: boto3 reads AWS_ENDPOINT_URL
    provider.send_sms(PATIENT_PHONE, render("reminder", "sms", "en", CONTEXT))
    provider.send_email(PATIENT_EMAIL, render("reminder", "email", "en", CONTEXT), from_address=SENDER)
    sent = _sent(moto)
    assert len(sent["sms"]) == 1 and len(sent["email"]) == 1


def test_unverified_sender_is_permanent(moto: str) -> None:
    rendered = render("welcome", "email", "en", CONTEXT)
    with pytest.raises(PermanentProviderError) as info:
        AwsProvider(REGION, endpoint_url=moto).send_email(PATIENT_EMAIL, rendered, from_address="other@lab.example.org")
    assert info.value.reason == "MessageRejected"
    assert "example.org" not in str(info.value)  # moto's message names the address; ours does not
    assert info.value.__context__ is None
    assert _sent(moto)["email"] == []


def test_invalid_phone_is_permanent_and_nothing_is_sent(moto: str) -> None:
    rendered = render("welcome", "sms", "en", CONTEXT)
    with pytest.raises(PermanentProviderError) as info:
        AwsProvider(REGION, endpoint_url=moto).send_sms("600111222", rendered)
    assert info.value.reason == "invalid_phone"
    assert _sent(moto)["sms"] == []


def test_stopped_server_is_transient(moto_url: str) -> None:
    # moto_url is only a dependency here for its environment (dummy credentials, region).
    server, url = _start_server()
    provider = AwsProvider(REGION, endpoint_url=url, connect_timeout=1, read_timeout=2)
    urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"), timeout=10).close()
    assert provider.send_sms(PATIENT_PHONE, render("welcome", "sms", "en", CONTEXT))
    server.stop()

    with pytest.raises(TransientProviderError) as info:
        provider.send_sms(PATIENT_PHONE, render("welcome", "sms", "en", CONTEXT))
    assert info.value.reason == "EndpointConnectionError"
    with pytest.raises(TransientProviderError):
        provider.send_email(PATIENT_EMAIL, render("welcome", "email", "en", CONTEXT), from_address=SENDER)


def test_closed_port_is_transient(moto_url: str, closed_port: int) -> None:
    provider = AwsProvider(REGION, endpoint_url=f"http://127.0.0.1:{closed_port}", connect_timeout=1, read_timeout=2)
    with pytest.raises(TransientProviderError) as info:
        provider.send_email(PATIENT_EMAIL, render("welcome", "email", "en", CONTEXT), from_address=SENDER)
    assert info.value.reason == "EndpointConnectionError"
