"""With PUSH_AUDIENCE set, only push requests carrying a valid Pub/Sub OIDC token are accepted."""

import os
import time
import uuid

import jwt
import pytest

from shared.lis import push_auth
from shared.settings import reset_settings
from tests.support import lis_db
from tests.support.hl7_tag import tag
from tests.support.lis_delivery import eventarc_binary, new_id, push
from tests.support.lis_samples import by_file
from tests.support.oidc import AUDIENCE, SERVICE_ACCOUNT, Issuer, jwks_server

RAW = by_file()["aidbox__ADT-A08__1.hl7"].raw
ISSUER = Issuer()


def _configure(**env: str) -> None:
    for key, value in env.items():
        os.environ[key] = value
    reset_settings()
    push_auth.reset_cache()


@pytest.fixture(scope="module")
def certs_url():
    with jwks_server(ISSUER) as url:
        yield url


@pytest.fixture()
def push_auth_on(database_url, certs_url):
    names = ("PUSH_AUDIENCE", "PUSH_SERVICE_ACCOUNT", "PUSH_CERTS_URL", "PUSH_ISSUER")
    saved = {n: os.environ.get(n) for n in names}
    _configure(PUSH_AUDIENCE=AUDIENCE, PUSH_SERVICE_ACCOUNT=SERVICE_ACCOUNT, PUSH_CERTS_URL=certs_url)
    yield certs_url
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    reset_settings()
    push_auth.reset_cache()


def _send(client, token: str | None, form=push):
    message_id = new_id()
    headers, body = form(tag(RAW, message_id), message_id)
    if token is not None:
        headers = {**headers, "Authorization": f"Bearer {token}"}
    return client.post("/", headers=headers, data=body), message_id


@pytest.mark.parametrize("form", [push, eventarc_binary])
def test_a_valid_token_is_accepted(lis_client, push_auth_on, form):
    response, message_id = _send(lis_client, ISSUER.token(), form)
    assert response.status_code == 200
    assert lis_db.messages(pubsub_message_id=message_id)[0].status == "processed"


def test_googles_other_issuer_spelling_is_accepted(lis_client, push_auth_on):
    response, _ = _send(lis_client, ISSUER.token(iss="accounts.google.com"))
    assert response.status_code == 200


OTHER = Issuer(kid="test-key-1")  # same kid, another key: a forged signature
UNKNOWN_KID = Issuer(kid="someone-else")


@pytest.mark.parametrize("token", [
    None,
    "",
    "not-a-jwt",
    ISSUER.token(aud="https://another-service.example.org"),
    ISSUER.token(iss="https://evil.example.org"),
    ISSUER.token(exp=int(time.time()) - 3600, iat=int(time.time()) - 7200),
    ISSUER.token(email="someone@evil.example.org"),
    ISSUER.token(email_verified=False),
    ISSUER.token(email=None),
    ISSUER.token(exp=None),
    OTHER.token(),
    UNKNOWN_KID.token(),
    jwt.encode({"aud": AUDIENCE, "iss": "https://accounts.google.com", "email": SERVICE_ACCOUNT, "email_verified": True,
                "exp": int(time.time()) + 600, "iat": int(time.time())}, "a-shared-secret-long-enough-for-hs256!", algorithm="HS256",
               headers={"kid": "test-key-1"}),
], ids=["missing", "empty", "garbage", "audience", "issuer", "expired", "email", "unverified", "no-email", "no-exp",
        "forged", "unknown-kid", "hs256"])
def test_an_invalid_token_is_401_and_nothing_is_stored(lis_client, push_auth_on, token):
    response, message_id = _send(lis_client, token)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert lis_db.messages(pubsub_message_id=message_id) == []


def test_unreachable_signing_keys_are_503(lis_client, push_auth_on, closed_port):
    _configure(PUSH_CERTS_URL=f"http://127.0.0.1:{closed_port}/certs")
    response, message_id = _send(lis_client, ISSUER.token())
    assert response.status_code == 503 and response.headers.get("Retry-After")
    assert lis_db.messages(pubsub_message_id=message_id) == []


def test_without_push_audience_no_token_is_needed(lis_client, database_url):
    assert os.environ.get("PUSH_AUDIENCE") is None
    response, message_id = _send(lis_client, None)
    assert response.status_code == 200 and lis_db.messages(pubsub_message_id=message_id)


def test_a_new_key_set_location_is_used(lis_client, push_auth_on):
    assert _send(lis_client, ISSUER.token())[0].status_code == 200
    rotated = Issuer(kid=f"rotated-{uuid.uuid4().hex[:6]}")
    with jwks_server(rotated) as url:
        _configure(PUSH_CERTS_URL=url)
        assert _send(lis_client, rotated.token())[0].status_code == 200
