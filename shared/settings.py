"""The one settings object. Nothing else in the project reads ``os.environ``.

Every field is read from the environment variable of the same name upper-cased
(``database_url`` ← ``DATABASE_URL``). The README's configuration table documents each one.
"""

from __future__ import annotations

import os
import re
from datetime import time
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class CriticalRange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    low: float | None = None
    high: float | None = None


class AlertTarget(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: Literal["email", "sms", "webhook"]
    to: str = Field(min_length=3, max_length=300)

    @model_validator(mode="after")
    def _address_fits_channel(self) -> AlertTarget:
        if self.channel == "sms" and not re.fullmatch(r"\+[1-9][0-9]{7,14}", self.to):
            raise ValueError("an sms target is an E.164 number")
        if self.channel == "email" and not re.fullmatch(r"[^@\s]+@[^@\s]+", self.to):
            raise ValueError("an email target is one address")
        if self.channel == "webhook" and not self.to.startswith(("https://", "http://")):
            raise ValueError("a webhook target is an http(s) URL")
        return self


class AlertRoute(AlertTarget):
    escalate_to: AlertTarget | None = None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    # --- database -----------------------------------------------------------------------------
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL, postgresql+pg8000://user@host:5432/db or ...?unix_sock=/path/.s.PGSQL.5432. "
        "Unset: `make dev` and the tests start an embedded PostgreSQL under DATA_DIR.",
    )
    db_pool_size: int | None = Field(
        default=None, ge=1, le=200, description="Connections per process. Default: THREADS (one per request thread of a gunicorn worker)."
    )
    db_pool_timeout_seconds: float = Field(default=5.0, gt=0, description="Wait for a free pooled connection before 503.")
    db_statement_timeout_ms: int = Field(default=15000, ge=0, description="PostgreSQL statement_timeout per connection (0 = none).")
    threads: int | None = Field(default=None, ge=1, description="gunicorn threads (functions-framework's THREADS; default 4 × CPUs).")
    workers: int = Field(default=1, ge=1, description="gunicorn workers (functions-framework's WORKERS).")

    # --- HTTP / logging -----------------------------------------------------------------------
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(default="INFO", description="Minimum log severity.")
    max_body_bytes: int = Field(default=1_048_576, ge=1024, description="Largest accepted request body (413 above).")
    public_base_url: str = Field(
        default="http://127.0.0.1:8080",
        description="The api's public URL (scheme, host, optional path prefix). FHIR links, fullUrl and Location are built on it, "
        "never on the request's Host header.",
    )
    api_key_cache_seconds: float = Field(
        default=5.0, ge=0, description="How long a verified API key is cached in-process (revocation takes effect within this)."
    )

    @field_validator("public_base_url")
    @classmethod
    def _public_base_url_shape(cls, value: str) -> str:
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
            raise ValueError("must be an absolute http(s) URL without query or fragment, e.g. https://api.lab.example.org")
        return value.strip().rstrip("/")

    # --- operator console (/console/, docs/operations.md) ----------------------------------------
    console_session_hours: float = Field(
        default=8.0, gt=0, le=24, description="Lifetime of an operator console session; signing in again starts a new one."
    )
    console_cookie_secure: bool = Field(
        default=True, description="Mark the console's session cookie Secure (HTTPS only). Off only for plain-HTTP loopback (`make dev`, tests)."
    )

    # --- events -------------------------------------------------------------------------------
    event_source: str | None = Field(
        default=None, description="CloudEvents `source` for events this process emits. Default: /patient-mgt/<function>."
    )
    k_sink: str | None = Field(default=None, description="Broker URL, injected by a Knative SinkBinding. HTTP binary-mode sink.")
    event_sink: str | None = Field(
        default=None, description="Alternative sink: pubsub://projects/P/topics/T publishes to Pub/Sub (ordering key = subject)."
    )
    publish_timeout_seconds: float = Field(default=2.0, gt=0, description="Timeout of the immediate publish after a commit.")
    publish_in_background: bool = Field(
        default=False,
        description="Answer right after the commit and publish its outbox events from a background thread of the process "
                    "(one round for every request that committed meanwhile); false: publish before answering.",
    )

    @field_validator("event_sink")
    @classmethod
    def _event_sink_shape(cls, value: str | None) -> str | None:
        # Fail at start-up, not at the first publish: a bad sink would leave every event unpublished.
        if value and not value.startswith(("http://", "https://")):
            parse_pubsub_sink(value)
        return value or None

    # --- Pub/Sub push authentication ------------------------------------------------------------
    push_audience: str | None = Field(default=None, description="When set, lis_consumer requires a Pub/Sub OIDC token with this audience.")
    push_service_account: str | None = Field(default=None, description="Expected `email` claim of the push token.")
    push_issuer: str = Field(default="https://accounts.google.com", description="Expected issuer of the push token.")
    push_certs_url: str = Field(
        default="https://www.googleapis.com/oauth2/v3/certs", description="JWKS document used to verify push tokens."
    )

    # --- notifications ------------------------------------------------------------------------
    notify_provider: Literal["aws", "console"] = Field(default="console", description="aws: SES e-mail + SNS SMS; console: files under DATA_DIR/outbox.")
    notify_email_from: str = Field(default="no-reply@lab.example.org", description="Verified SES sender address.")
    notify_facility_name: str = Field(
        default="Clinical Laboratory", min_length=1, max_length=100, description="Signature of notification e-mails (never in SMS or subjects)."
    )
    notify_sending_lease_seconds: float = Field(
        default=300.0, ge=30, description="A notification claimed for sending longer than this is marked failed/outcome_unknown, never resent."
    )
    portal_url: str | None = Field(
        default=None, description="The patient portal, linked from notifications (absolute http(s), at most 100 characters). "
        "Unset: messages carry no link.",
    )
    quiet_hours_start: time = Field(default=time(21, 0), description="Local time (patient's timezone) from which SMS are deferred.")
    quiet_hours_end: time = Field(default=time(8, 0), description="Local time at which deferred SMS may go out.")
    aws_region: str = Field(default="us-east-1", description="AWS region for SES/SNS.")
    aws_endpoint_url: str | None = Field(default=None, description="AWS endpoint override (moto in tests); boto3 honours it too.")

    # --- critical results (shared/critical) ----------------------------------------------------------
    critical_ranges: dict[str, CriticalRange] = Field(
        default_factory=dict,
        description='JSON: per OBX-3 code, the values outside which a numeric result is critical, e.g. '
        '{"2823-3": {"low": 2.8, "high": 6.2}}. OBX-8 HH, LL and AA are critical whatever this says.',
    )
    critical_alert_routes: dict[str, AlertRoute] = Field(
        default_factory=dict,
        description='JSON: who is told of a critical result, by "<facility>/<ward>", "<facility>" (MSH-4; ward = PV1-3.1) '
        'or "*", e.g. {"LAB/ICU": {"channel": "sms", "to": "+14155550100", "escalate_to": {"channel": "email", '
        '"to": "icu-lead@hosp.example"}}}; channel email, sms or webhook (to = an https URL).',
    )
    critical_alert_escalate_after_seconds: float = Field(
        default=900.0, ge=0, description="An alert not acknowledged this long after it was raised is escalated."
    )
    critical_alert_link: str | None = Field(
        default=None, max_length=200,
        description="Where a clinician opens an alert, with {alert_id} in it (e.g. https://ward.example/alerts/{alert_id}). "
        "Unset: messages carry the alert id, no link.",
    )

    # --- LIS / jobs -----------------------------------------------------------------------------
    lis_max_body_bytes: int = Field(
        default=10_485_760, ge=1024, description="Largest body lis_consumer accepts (413 above, nothing stored; Pub/Sub dead-letters it)."
    )
    lis_raw_retention_days: int = Field(default=90, ge=1, description="Raw LIS payloads older than this are purged (metadata kept).")
    lis_order_overdue_hours: int = Field(default=24, ge=1, description="Orders without results after this emit order-overdue.")
    job_time_budget_seconds: float = Field(default=50.0, gt=0, description="Time budget of one job run (below the service timeout).")
    fhir_export_retention_hours: float = Field(default=24.0, gt=0, le=24 * 30, description=(
        "How long the files of a finished FHIR Bulk Data export can be downloaded (the manifest's Expires); "
        "the retention job deletes them after."))

    # --- MLLP adapter (`patient-mgt mllp`, docs/lis.md §9) ----------------------------------------
    mllp_host: str = Field(default="127.0.0.1", description="Address the MLLP listener binds (0.0.0.0 in its container).")
    mllp_port: int = Field(default=2575, ge=0, le=65535, description="TCP port of the MLLP listener (0: a free port).")
    mllp_topic: str = Field(
        default="lis-inbound", description="Topic the MLLP listener publishes to: a name in GOOGLE_CLOUD_PROJECT or projects/P/topics/T."
    )
    mllp_max_frame_bytes: int = Field(
        default=5_242_880, ge=1024, le=7_000_000,
        description="Largest MLLP frame accepted (AR above, connection kept). Base64 in a push body must stay under LIS_MAX_BODY_BYTES.",
    )
    mllp_idle_timeout_seconds: float = Field(default=300.0, gt=0, description="An MLLP connection silent this long is closed.")
    mllp_publish_timeout_seconds: float = Field(
        default=10.0, gt=0, description="Wait for Pub/Sub to confirm a publish before answering the sender AE."
    )
    mllp_max_connections: int = Field(default=200, ge=1, description="Concurrent MLLP connections; more are closed at once.")
    mllp_allowed_networks: str = Field(
        default="", description="Comma list of CIDR networks allowed to connect to the MLLP listener (empty: any)."
    )
    mllp_tls_cert_file: Path | None = Field(default=None, description="PEM certificate chain: the MLLP listener speaks TLS when set.")
    mllp_tls_key_file: Path | None = Field(default=None, description="PEM private key of MLLP_TLS_CERT_FILE.")
    mllp_tls_client_ca_file: Path | None = Field(
        default=None, description="PEM CA bundle: when set, MLLP clients must present a certificate it signed."
    )

    lis_mllp_host: str | None = Field(
        default=None, description="The LIS's MLLP host: when set, `patient-mgt mllp` also sends the outbound subscription's messages there."
    )
    lis_mllp_port: int = Field(default=2575, ge=1, le=65535, description="The LIS's MLLP port.")
    lis_outbound_subscription: str = Field(
        default="lis-outbound-mllp", description="Pull subscription of the messages for the LIS: a name in GOOGLE_CLOUD_PROJECT or projects/P/subscriptions/S."
    )
    lis_ack_timeout_seconds: float = Field(default=30.0, gt=0, description="Wait for the LIS's ACK before counting a send as failed.")
    lis_outbound_attempts: int = Field(
        default=5, ge=1, le=100, description="Sends (with backoff) before a message is nacked to Pub/Sub (which redelivers, then dead-letters it)."
    )
    lis_outbound_backoff_seconds: float = Field(default=2.0, gt=0, description="First wait between sends to the LIS; doubles each time (capped at 300 s).")

    lis_outbound_topic: str | None = Field(
        default=None, description="Topic of the order messages for the LIS (jobs publishes, the MLLP adapter sends). Unset: orders are not sent."
    )
    lis_outbound_dead_letter_subscription: str | None = Field(
        default=None, description="Pull subscription of <LIS_OUTBOUND_TOPIC>-dead-letter: when set, `patient-mgt mllp` stores what it holds as dead letters (listed, counted in /metrics, re-drivable)."
    )
    lis_order_message_type: Literal["ORM^O01", "OML^O21"] = Field(default="ORM^O01", description="How orders are sent to this LIS.")
    lis_receiving_application: str = Field(default="", max_length=180, description="MSH-5 of the messages to the LIS.")
    lis_receiving_facility: str = Field(default="", max_length=180, description="MSH-6 of the messages to the LIS.")

    @field_validator("mllp_allowed_networks")
    @classmethod
    def _networks_shape(cls, value: str) -> str:
        import ipaddress  # noqa: PLC0415

        for item in (v.strip() for v in value.split(",")):
            if item:
                ipaddress.ip_network(item, strict=False)  # ValueError names the bad entry
        return value

    function_target: str | None = Field(
        default=None, description="Set by functions-framework/buildpacks (FUNCTION_TARGET): which function this process serves."
    )

    # --- observability (OpenTelemetry's standard variables; docs/operations.md) -----------------
    otel_service_name: str | None = Field(
        default=None, max_length=100, description="service.name of metrics and traces. Default: patient-mgt-<function>."
    )
    otel_traces_exporter: str = Field(
        default="none", description="Comma list of otlp (OTLP/HTTP), console (one JSON line per span on stderr), none."
    )
    otel_metrics_exporter: str = Field(
        default="none", description="Comma list of otlp, prometheus (GET /metrics on the api), console, none."
    )
    otel_exporter_otlp_endpoint: str | None = Field(
        default=None, description="OTLP/HTTP base URL, e.g. http://collector:4318 (/v1/traces, /v1/metrics appended). "
        "Unset: the exporter's default, http://localhost:4318."
    )
    otel_metric_export_interval: int = Field(default=60000, ge=1000, description="Milliseconds between OTLP/console metric exports.")
    otel_traces_sampler_arg: float = Field(
        default=1.0, ge=0, le=1, description="Share of new traces sampled; a caller's sampling decision is always kept."
    )

    @field_validator("otel_traces_exporter", "otel_metrics_exporter")
    @classmethod
    def _exporter_names(cls, value: str, info: ValidationInfo) -> str:
        allowed = {"otlp", "console", "none"} | ({"prometheus"} if info.field_name == "otel_metrics_exporter" else set())
        names = [n.strip().lower() for n in value.split(",") if n.strip()]
        unknown = sorted(set(names) - allowed)
        if unknown:
            raise ValueError(f"unknown exporter(s) {unknown}; choose from {sorted(allowed)}")
        return ",".join(n for n in names if n != "none") or "none"

    # --- local -------------------------------------------------------------------------------
    data_dir: Path = Field(default=PROJECT_ROOT / ".data", description="Local state for `make dev`: embedded PostgreSQL, console outbox.")
    google_cloud_project: str = Field(default="patient-mgt-local", description="Pub/Sub project id.")
    dev_port_base: int = Field(
        default=8080, ge=1024, le=65000,
        description="`make dev`: the api's port; lis_consumer, notify and jobs listen on the next three, the Pub/Sub "
        "emulator on +5, the router on +10 (each movable with a `patient-mgt dev` flag).",
    )

    def pool_size(self) -> int:
        """One connection per request thread: functions-framework runs WORKERS × THREADS (pool is per worker)."""
        if self.db_pool_size:
            return self.db_pool_size
        return self.threads or (os.cpu_count() or 1) * 4


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def reset_settings() -> None:
    """Forget the cached settings (tests that change the environment)."""
    get_settings.cache_clear()


# A Pub/Sub topic path (resource names: letters, digits, - _ . ~ + %, 3-255 chars, starting with a letter).
# Here, not in shared.events.publishing, because the setting's validator needs it and settings imports
# nothing of the project (shared.events.publishing reads the settings: the other way round was a cycle).
TOPIC_PATH = re.compile(r"projects/[a-z][a-z0-9-]{4,28}[a-z0-9]/topics/[A-Za-z][A-Za-z0-9._~+%-]{2,254}")


def parse_pubsub_sink(value: str) -> str:
    """``pubsub://projects/P/topics/T`` -> ``projects/P/topics/T``; ValueError when malformed."""
    path = value.removeprefix("pubsub://")
    if not TOPIC_PATH.fullmatch(path):
        raise ValueError("EVENT_SINK must look like pubsub://projects/<project>/topics/<topic>")
    return path
