"""AwsProvider at the boto boundary: request shape and error mapping (botocore Stubber, no network).

The provider's behaviour against a running SES/SNS (moto's server) is in
tests/integration/notify_providers/test_aws_provider.py.
"""

from __future__ import annotations

import logging

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ParamValidationError,
    ReadTimeoutError,
)
from botocore.stub import Stubber

from shared.notify import AwsProvider, PermanentProviderError, TransientProviderError
from shared.notify.render import render
from shared.notify.providers.aws import classify_error

PATIENT_EMAIL = "xiomara.quill@example.org"
PATIENT_PHONE = "+34600111222"
SENDER = "no-reply@lab.example.org"
CONTEXT = {"given_name": "Xiomarita", "facility_name": "Quillfeather Clinic", "portal_url": "https://portal.example.org/lab"}
# Provider messages quote the recipient; none of it may leave the provider.
LEAKY_MESSAGE = f"Address blacklisted: {PATIENT_EMAIL} {PATIENT_PHONE}"


@pytest.fixture(autouse=True)
def _dummy_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)


@pytest.fixture()
def provider() -> AwsProvider:
    return AwsProvider("us-east-1", endpoint_url="http://127.0.0.1:9", configuration_set="notify")


@pytest.fixture()
def email_rendering():
    return render("welcome", "email", "en", CONTEXT)


@pytest.fixture()
def sms_rendering():
    return render("welcome", "sms", "en", CONTEXT)


def test_email_request_has_subject_text_and_html(provider: AwsProvider, email_rendering) -> None:
    with Stubber(provider.ses_client) as stub:
        stub.add_response(
            "send_email",
            {"MessageId": "ses-1"},
            expected_params={
                "FromEmailAddress": SENDER,
                "Destination": {"ToAddresses": [PATIENT_EMAIL]},
                "ConfigurationSetName": "notify",
                "Content": {
                    "Simple": {
                        "Subject": {"Data": email_rendering.subject, "Charset": "UTF-8"},
                        "Body": {
                            "Text": {"Data": email_rendering.text, "Charset": "UTF-8"},
                            "Html": {"Data": email_rendering.html, "Charset": "UTF-8"},
                        },
                    }
                },
            },
        )
        assert provider.send_email(PATIENT_EMAIL, email_rendering, from_address=SENDER) == "ses-1"
        stub.assert_no_pending_responses()


def test_sms_request_is_transactional(provider: AwsProvider, sms_rendering) -> None:
    with Stubber(provider.sns_client) as stub:
        stub.add_response(
            "publish",
            {"MessageId": "sns-1"},
            expected_params={
                "PhoneNumber": PATIENT_PHONE,
                "Message": sms_rendering.text,
                "MessageAttributes": {"AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": "Transactional"}},
            },
        )
        assert provider.send_sms(PATIENT_PHONE, sms_rendering) == "sns-1"


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("MessageRejected", 400, PermanentProviderError),
        ("MailFromDomainNotVerifiedException", 400, PermanentProviderError),
        ("BadRequestException", 400, PermanentProviderError),
        ("NotFoundException", 404, PermanentProviderError),
        ("TooManyRequestsException", 429, TransientProviderError),
        ("LimitExceededException", 400, TransientProviderError),
        ("Throttling", 400, TransientProviderError),
        ("AccountSuspendedException", 400, TransientProviderError),
        ("SendingPausedException", 400, TransientProviderError),
        ("UnrecognizedClientException", 403, TransientProviderError),
        ("InternalFailure", 500, TransientProviderError),
        ("ServiceUnavailable", 503, TransientProviderError),
        ("SomethingNewServerSide", 502, TransientProviderError),
        ("SomethingNewClientSide", 400, PermanentProviderError),
    ],
)
def test_ses_error_mapping(provider: AwsProvider, email_rendering, code: str, status: int, expected: type, caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="shared.notify")
    with Stubber(provider.ses_client) as stub:
        stub.add_client_error("send_email", service_error_code=code, service_message=LEAKY_MESSAGE, http_status_code=status)
        with pytest.raises(expected) as info:
            provider.send_email(PATIENT_EMAIL, email_rendering, from_address=SENDER)
    error = info.value
    assert error.reason == code
    assert str(error) == code
    # nothing of the provider's message travels with the error or into the log
    assert error.__cause__ is None and error.__context__ is None
    logged = " ".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert [r.fields["reason"] for r in caplog.records] == [code]
    for secret in (PATIENT_EMAIL, PATIENT_PHONE, "blacklisted", email_rendering.subject):
        assert secret not in logged


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("InvalidParameter", 400, PermanentProviderError),
        ("ParameterValueInvalid", 400, PermanentProviderError),
        ("EndpointDisabled", 400, PermanentProviderError),
        ("Throttled", 429, TransientProviderError),
        ("KMSThrottling", 400, TransientProviderError),
        ("AuthorizationError", 403, TransientProviderError),
        ("InternalError", 500, TransientProviderError),
    ],
)
def test_sns_error_mapping(provider: AwsProvider, sms_rendering, code: str, status: int, expected: type) -> None:
    with Stubber(provider.sns_client) as stub:
        stub.add_client_error("publish", service_error_code=code, service_message=LEAKY_MESSAGE, http_status_code=status)
        with pytest.raises(expected) as info:
            provider.send_sms(PATIENT_PHONE, sms_rendering)
    assert info.value.reason == code
    assert PATIENT_PHONE not in repr(info.value)


def test_invalid_phone_never_reaches_sns(provider: AwsProvider, sms_rendering) -> None:
    with Stubber(provider.sns_client) as stub:  # nothing queued: a call would fail differently
        with pytest.raises(PermanentProviderError) as info:
            provider.send_sms("0034600111222", sms_rendering)
        stub.assert_no_pending_responses()
    assert info.value.reason == "invalid_phone"


URL = "https://email.us-east-1.amazonaws.com"


def _client_error(code: str | None, status: int, message: str = "", request_id: str | None = None) -> ClientError:
    error = {"Code": code, "Message": message} if code else {}
    meta = {"HTTPStatusCode": status, **({"RequestId": request_id} if request_id else {})}
    return ClientError({"Error": error, "ResponseMetadata": meta}, "SendEmail")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("exc", "expected", "reason"),
    [
        (EndpointConnectionError(endpoint_url=URL), TransientProviderError, "EndpointConnectionError"),
        (ConnectTimeoutError(endpoint_url=URL), TransientProviderError, "ConnectTimeoutError"),
        (ReadTimeoutError(endpoint_url=URL), TransientProviderError, "ReadTimeoutError"),
        (ConnectionClosedError(endpoint_url=URL), TransientProviderError, "ConnectionClosedError"),
        (NoCredentialsError(), TransientProviderError, "aws_credentials"),
        (ParamValidationError(report=f"Invalid {PATIENT_EMAIL}"), PermanentProviderError, "invalid_parameter"),
        (_client_error("Throttling", 400, LEAKY_MESSAGE), TransientProviderError, "Throttling"),
        (_client_error(None, 503), TransientProviderError, "http_503"),
        (_client_error(None, 429), TransientProviderError, "http_429"),
        (_client_error(f"Bad {PATIENT_EMAIL}", 400), PermanentProviderError, "provider_error"),
    ],
)
def test_classify_error(exc: Exception, expected: type, reason: str) -> None:
    error = classify_error(exc)
    assert type(error) is expected
    assert error.reason == reason


def test_classify_error_keeps_the_request_id() -> None:
    assert classify_error(_client_error("MessageRejected", 400, request_id="r-42")).request_id == "r-42"


def test_classify_error_refuses_foreign_exceptions() -> None:
    with pytest.raises(TypeError):
        classify_error(RuntimeError("boom"))


def test_region_is_required() -> None:
    with pytest.raises(ValueError):
        AwsProvider("")
