"""PUSH_AUDIENCE in a real process: a signed push token gets in, anything else is 401 and not stored."""

import pytest
import requests

from tests.support import lis_db
from tests.support.hl7_tag import tag
from tests.support.lis_delivery import new_id, push
from tests.support.lis_samples import by_file
from tests.support.oidc import AUDIENCE, SERVICE_ACCOUNT, Issuer, jwks_server

pytestmark = pytest.mark.e2e
RAW = by_file()["aidbox__ADT-A08__1.hl7"].raw


def test_push_tokens_are_required_and_verified(start_fn):
    issuer = Issuer()
    with jwks_server(issuer) as certs:
        proc = start_fn("lis_consumer", env={"PUSH_AUDIENCE": AUDIENCE, "PUSH_SERVICE_ACCOUNT": SERVICE_ACCOUNT,
                                             "PUSH_CERTS_URL": certs})
        for token, expected in ((None, 401), (issuer.token(aud="https://elsewhere"), 401), (issuer.token(), 200)):
            message_id = new_id()
            headers, body = push(tag(RAW, message_id), message_id)
            if token:
                headers["Authorization"] = f"Bearer {token}"
            assert requests.post(proc.url + "/projects/p/topics/lis", data=body, headers=headers, timeout=30).status_code == expected
            assert bool(lis_db.messages(pubsub_message_id=message_id)) == (expected == 200)
