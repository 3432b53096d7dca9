"""AWS provider: e-mail through SES (API v2 ``SendEmail``), SMS through SNS ``Publish``.

boto3 is imported, and each client created, on the first send of its channel (importing boto3
costs ~130 ms of cold start that most requests do not need). Endpoints: an explicit
``endpoint_url`` wins; otherwise boto3's own configuration applies, including ``AWS_ENDPOINT_URL``
(moto in tests). Credentials and region come from boto3's usual chain; ``region`` is required.

Timeouts are short and botocore retries once: the platform redelivers the event on a
TransientProviderError, so retrying long here only holds a request thread.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any, Literal

from shared.notify.providers.base import (
    PermanentProviderError,
    ProviderError,
    TransientProviderError,
    check_email,
    check_phone,
    check_rendered,
)

if TYPE_CHECKING:
    from shared.notify.render import Rendered

logger = logging.getLogger(__name__)

# Error codes from SES v2 SendEmail and SNS Publish (and the generic AWS ones) → outcome.
TRANSIENT_CODES = frozenset(
    {
        # throttling and quotas
        "Throttling", "ThrottlingException", "Throttled", "TooManyRequestsException",
        "LimitExceededException", "RequestLimitExceeded", "KMSThrottling",
        # the service is having a bad time
        "ServiceUnavailable", "ServiceUnavailableException", "InternalError", "InternalFailure",
        "InternalServiceError", "InternalServiceErrorException", "RequestTimeout", "RequestTimeoutException",
        # our account or credentials: an operator fixes it, the queued messages then go out
        "AccountSuspendedException", "SendingPausedException", "AuthorizationError", "AccessDenied",
        "AccessDeniedException", "UnrecognizedClientException", "InvalidClientTokenId", "ExpiredToken",
        "ExpiredTokenException", "SignatureDoesNotMatch", "InvalidSecurity", "RequestExpired",
        "KMSDisabled", "KMSInvalidState", "KMSNotFound", "KMSOptInRequired", "KMSAccessDenied",
    }
)
PERMANENT_CODES = frozenset(
    {
        "MessageRejected", "MailFromDomainNotVerifiedException", "MailFromDomainNotVerified",
        "BadRequestException", "InvalidParameterValue", "InvalidParameterValueException",
        "ParameterValueInvalid", "InvalidParameter", "InvalidParameterException", "ValidationException",
        "ValidationError", "EndpointDisabled", "NotFoundException", "NotFound", "OptedOut",
    }
)


def classify_error(exc: Exception) -> ProviderError:
    """Map a botocore exception to Transient/PermanentProviderError with a safe reason code.

    Known codes decide; otherwise HTTP 429 and 5xx are transient and other 4xx permanent.
    Connection failures and timeouts are transient; missing credentials too (configuration).
    """
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        ConnectionError,
        CredentialRetrievalError,
        HTTPClientError,
        NoCredentialsError,
        ParamValidationError,
        PartialCredentialsError,
    )

    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {}) or {}
        meta = exc.response.get("ResponseMetadata", {}) or {}
        code = str(error.get("Code") or "")
        status = int(meta.get("HTTPStatusCode") or 0)
        request_id = meta.get("RequestId") or None
        reason = code or f"http_{status}"
        if code in TRANSIENT_CODES:
            return TransientProviderError(reason, request_id=request_id)
        if code in PERMANENT_CODES:
            return PermanentProviderError(reason, request_id=request_id)
        if status == 429 or status >= 500 or status == 0:
            return TransientProviderError(reason, request_id=request_id)
        return PermanentProviderError(reason, request_id=request_id)
    if isinstance(exc, (ConnectionError, HTTPClientError)):
        return TransientProviderError(type(exc).__name__)
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError, CredentialRetrievalError)):
        return TransientProviderError("aws_credentials")
    if isinstance(exc, ParamValidationError):
        return PermanentProviderError("invalid_parameter")
    if isinstance(exc, BotoCoreError):
        return TransientProviderError(type(exc).__name__)
    raise TypeError(f"not a botocore error: {type(exc).__name__}")


class AwsProvider:
    name = "aws"

    def __init__(
        self,
        region: str,
        endpoint_url: str | None = None,
        *,
        configuration_set: str | None = None,
        sms_type: Literal["Transactional", "Promotional"] = "Transactional",
        sms_sender_id: str | None = None,
        connect_timeout: float = 2.0,
        read_timeout: float = 5.0,
        total_attempts: int = 2,
    ) -> None:
        if not region:
            raise ValueError("AwsProvider needs a region")
        self.region = region
        self.endpoint_url = endpoint_url or None
        self.configuration_set = configuration_set
        self.sms_type = sms_type
        self.sms_sender_id = sms_sender_id
        self._timeouts = (connect_timeout, read_timeout, total_attempts)
        self._lock = threading.Lock()
        self._session: Any = None
        self._clients: dict[str, Any] = {}

    # -- clients (lazy, once per provider, thread-safe) -----------------------------------------
    def _client(self, service: str) -> Any:
        client = self._clients.get(service)
        if client is None:
            with self._lock:
                client = self._clients.get(service)
                if client is None:
                    import boto3.session
                    from botocore.config import Config

                    if self._session is None:  # boto3's default session is not thread-safe
                        self._session = boto3.session.Session(region_name=self.region)
                    connect_timeout, read_timeout, attempts = self._timeouts
                    config = Config(
                        connect_timeout=connect_timeout,
                        read_timeout=read_timeout,
                        retries={"mode": "standard", "total_max_attempts": attempts},
                    )
                    client = self._session.client(service, endpoint_url=self.endpoint_url, config=config)
                    self._clients[service] = client
        return client

    @property
    def ses_client(self) -> Any:
        """The SES v2 client (created on first use)."""
        return self._client("sesv2")

    @property
    def sns_client(self) -> Any:
        """The SNS client (created on first use)."""
        return self._client("sns")

    # -- sending -----------------------------------------------------------------------------
    def send_email(self, to: str, rendered: Rendered, *, from_address: str) -> str:
        check_rendered(rendered, "email")
        check_email(to)
        check_email(from_address, reason="invalid_sender")
        body: dict[str, Any] = {"Text": {"Data": rendered.text, "Charset": "UTF-8"}}
        if rendered.html is not None:
            body["Html"] = {"Data": rendered.html, "Charset": "UTF-8"}
        request: dict[str, Any] = {
            "FromEmailAddress": from_address,
            "Destination": {"ToAddresses": [to]},
            "Content": {"Simple": {"Subject": {"Data": rendered.subject, "Charset": "UTF-8"}, "Body": body}},
        }
        if self.configuration_set:
            request["ConfigurationSetName"] = self.configuration_set
        response = self._call("email", rendered, lambda: self.ses_client.send_email(**request))
        return self._sent("email", rendered, response["MessageId"])

    def send_sms(self, to: str, rendered: Rendered) -> str:
        check_rendered(rendered, "sms")
        check_phone(to)
        attributes = {"AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": self.sms_type}}
        if self.sms_sender_id:
            attributes["AWS.SNS.SMS.SenderID"] = {"DataType": "String", "StringValue": self.sms_sender_id}
        response = self._call(
            "sms",
            rendered,
            lambda: self.sns_client.publish(PhoneNumber=to, Message=rendered.text, MessageAttributes=attributes),
        )
        return self._sent("sms", rendered, response["MessageId"])

    def _call(self, channel: str, rendered: Rendered, send: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return send()
        except (ClientError, BotoCoreError) as exc:
            error = classify_error(exc)
        # Raised outside the except block: botocore's message can quote the recipient, so it must
        # not travel along as __context__ into a traceback someone logs.
        logger.warning(
            "notification send failed",
            extra={
                "fields": {
                    "provider": "aws",
                    "channel": channel,
                    "kind": rendered.kind,
                    "outcome": "transient" if isinstance(error, TransientProviderError) else "permanent",
                    "reason": error.reason,
                    "aws_request_id": error.request_id,
                }
            },
        )
        raise error

    @staticmethod
    def _sent(channel: str, rendered: Rendered, message_id: str) -> str:
        logger.info(
            "notification sent",
            extra={"fields": {"provider": "aws", "channel": channel, "kind": rendered.kind, "message_id": message_id}},
        )
        return message_id
