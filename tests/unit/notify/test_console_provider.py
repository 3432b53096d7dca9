"""ConsoleProvider, the factory, the fake, and address validation shared by every provider."""

from __future__ import annotations

import email
import logging
import subprocess
import sys
from email import policy
from pathlib import Path

import pytest

from shared.notify import (
    AwsProvider,
    ConsoleProvider,
    PermanentProviderError,
    Provider,
    TransientProviderError,
    make_provider,
)
from shared.notify.providers.base import check_email, check_phone
from shared.notify.providers.fake import FakeProvider
from shared.notify.render import render

ROOT = Path(__file__).resolve().parents[3]
PATIENT_EMAIL = "xiomara.quill@example.org"
PATIENT_PHONE = "+34600111222"
SENDER = "no-reply@lab.example.org"
CONTEXT = {"given_name": "Xiomarita", "facility_name": "Quillfeather Clinic", "portal_url": "https://portal.example.org/lab"}


@pytest.fixture()
def email_rendering():
    return render("results_ready", "email", "es", CONTEXT)


@pytest.fixture()
def sms_rendering():
    return render("results_ready", "sms", "es", CONTEXT)


def test_email_file_is_a_parsable_mime_message(tmp_path: Path, email_rendering) -> None:
    outbox = tmp_path / "does" / "not" / "exist"
    message_id = ConsoleProvider(outbox).send_email(PATIENT_EMAIL, email_rendering, from_address=SENDER)

    files = list(outbox.iterdir())
    assert [f.name for f in files] == [f"{message_id}.eml"]
    msg = email.message_from_bytes(files[0].read_bytes(), policy=policy.default)
    assert msg["To"] == PATIENT_EMAIL
    assert msg["From"] == SENDER
    assert msg["Subject"] == email_rendering.subject
    assert msg["Content-Language"] == "es"
    assert message_id in msg["Message-ID"]
    assert msg.get_body(("plain",)).get_content() == email_rendering.text
    assert msg.get_body(("html",)).get_content().rstrip("\n") == email_rendering.html.rstrip("\n")


def test_sms_file_has_headers_and_the_text(tmp_path: Path, sms_rendering) -> None:
    message_id = ConsoleProvider(tmp_path).send_sms(PATIENT_PHONE, sms_rendering)

    path = tmp_path / f"{message_id}.sms.txt"
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
    msg = email.message_from_bytes(path.read_bytes(), policy=policy.default)
    assert msg["To"] == PATIENT_PHONE
    assert msg.get_content().rstrip("\n") == sms_rendering.text


def test_message_ids_are_unique_and_sort_in_sending_order(tmp_path: Path, sms_rendering) -> None:
    provider = ConsoleProvider(tmp_path)
    ids = [provider.send_sms(PATIENT_PHONE, sms_rendering) for _ in range(20)]
    assert len(set(ids)) == 20
    assert sorted(ids) == ids
    assert sorted(p.name.removesuffix(".sms.txt") for p in tmp_path.iterdir()) == ids


def test_log_line_carries_no_patient_data(tmp_path: Path, email_rendering, sms_rendering, caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="shared.notify")
    provider = ConsoleProvider(tmp_path)
    email_id = provider.send_email(PATIENT_EMAIL, email_rendering, from_address=SENDER)
    sms_id = provider.send_sms(PATIENT_PHONE, sms_rendering)

    assert len(caplog.records) == 2
    fields = [r.fields for r in caplog.records]
    assert fields[0] == {"provider": "console", "channel": "email", "kind": "results_ready", "message_id": email_id}
    assert fields[1] == {"provider": "console", "channel": "sms", "kind": "results_ready", "message_id": sms_id}
    everything = " ".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    for secret in (PATIENT_EMAIL, PATIENT_PHONE, "Xiomarita", "Quillfeather", email_rendering.subject):
        assert secret not in everything


def test_invalid_addresses_are_permanent_and_write_nothing(tmp_path: Path, email_rendering, sms_rendering) -> None:
    provider = ConsoleProvider(tmp_path)
    with pytest.raises(PermanentProviderError) as info:
        provider.send_sms("600111222", sms_rendering)
    assert info.value.reason == "invalid_phone"
    with pytest.raises(PermanentProviderError) as info:
        provider.send_email(f"{PATIENT_EMAIL}\r\nBcc: other@example.org", email_rendering, from_address=SENDER)
    assert info.value.reason == "invalid_address"
    assert PATIENT_EMAIL not in str(info.value)
    with pytest.raises(PermanentProviderError) as info:
        provider.send_email(PATIENT_EMAIL, email_rendering, from_address="not an address")
    assert info.value.reason == "invalid_sender"
    assert not tmp_path.exists() or not any(tmp_path.iterdir())


def test_unwritable_outbox_is_transient(tmp_path: Path, sms_rendering) -> None:
    blocker = tmp_path / "outbox"
    blocker.write_text("a file where the directory should be")
    with pytest.raises(TransientProviderError) as info:
        ConsoleProvider(blocker).send_sms(PATIENT_PHONE, sms_rendering)
    assert info.value.reason.startswith("outbox_")


def test_an_sms_rendering_cannot_be_sent_as_email(tmp_path: Path, sms_rendering) -> None:
    with pytest.raises(ValueError, match="subject"):
        ConsoleProvider(tmp_path).send_email(PATIENT_EMAIL, sms_rendering, from_address=SENDER)


# -- address validation (every provider uses it) ------------------------------------------------


@pytest.mark.parametrize("phone", ["+34600111222", "+12025550100", "+4915112345678", "+861012345678901"])
def test_valid_phones(phone: str) -> None:
    check_phone(phone)


@pytest.mark.parametrize(
    "phone",
    [
        "34600111222",  # no +
        "+034600111222",  # leading zero country code
        "+1234567",  # 7 digits: too short
        "+1234567890123456",  # 16 digits: too long
        "+1 202 555 0100",
        "+1-202-555-0100",
        "+12025550100\n",  # a $ anchor would let this through
        "+١٢٣٤٥٦٧٨٩٠",  # Arabic-Indic digits match \\d but are not E.164
        "",
        None,
    ],
)
def test_invalid_phones(phone: str) -> None:
    with pytest.raises(PermanentProviderError) as info:
        check_phone(phone)
    assert info.value.reason == "invalid_phone"
    assert str(info.value) == "invalid_phone"


@pytest.mark.parametrize(
    "address",
    [
        "",
        "plain",
        "a@",
        "@b.org",
        "a@b@c.org",
        "a b@c.org",
        "a@b.org\n",
        "a@b.org,c@d.org",
        "Name <a@b.org>",
        "a" * 250 + "@b.org",
    ],
)
def test_invalid_email_addresses(address: str) -> None:
    with pytest.raises(PermanentProviderError) as info:
        check_email(address)
    assert info.value.reason == "invalid_address"


def test_permanent_error_reason_cannot_carry_an_address() -> None:
    assert PermanentProviderError(f"rejected {PATIENT_EMAIL}").reason == "provider_error"
    assert PermanentProviderError("MessageRejected").reason == "MessageRejected"


# -- factory and port -------------------------------------------------------------------------------


def test_make_provider(tmp_path: Path) -> None:
    console = make_provider("console", outbox_dir=tmp_path)
    assert isinstance(console, ConsoleProvider) and console.outbox_dir == tmp_path
    assert make_provider("console").outbox_dir == Path(".data/outbox")
    aws = make_provider("aws", region="eu-west-1", endpoint_url="http://127.0.0.1:1")
    assert isinstance(aws, AwsProvider) and aws.region == "eu-west-1"
    with pytest.raises(ValueError, match="smtp"):
        make_provider("smtp")
    with pytest.raises(TypeError):
        make_provider("aws")  # region is required


@pytest.mark.parametrize("provider", [ConsoleProvider(Path("x")), AwsProvider("us-east-1"), FakeProvider()])
def test_providers_satisfy_the_port(provider: object) -> None:
    assert isinstance(provider, Provider)


def test_fake_provider_records_and_fails_on_demand(email_rendering, sms_rendering) -> None:
    fake = FakeProvider()
    fake.fail_next(TransientProviderError("Throttling"))
    with pytest.raises(TransientProviderError):
        fake.send_sms(PATIENT_PHONE, sms_rendering)
    assert fake.send_sms(PATIENT_PHONE, sms_rendering) == "fake-1"
    assert fake.send_email(PATIENT_EMAIL, email_rendering, from_address=SENDER) == "fake-2"
    assert [(m.channel, m.to) for m in fake.sent] == [("sms", PATIENT_PHONE), ("email", PATIENT_EMAIL)]
    with pytest.raises(PermanentProviderError):
        fake.send_sms("12345", sms_rendering)


def test_importing_and_building_providers_does_not_import_boto3_or_jinja2() -> None:
    code = (
        "import sys\n"
        "from shared.notify import make_provider\n"
        "make_provider('aws', region='us-east-1'); make_provider('console', outbox_dir='x')\n"
        "heavy = sorted(m for m in ('boto3', 'botocore', 'jinja2') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=60)
