import hashlib
import uuid

import pytest
import sqlalchemy as sa

from shared import audit
from shared.auth import SYSTEM_CLI, authenticate, create_api_key, revoke_api_key
from shared.db import unit_of_work
from shared.errors import Unauthorized, ValidationFailed
from shared.models import ApiKey, AuditEntry


def test_only_a_hash_of_the_token_is_stored_and_revocation_locks_out(database_url):
    name = f"k-{uuid.uuid4().hex[:8]}"
    with unit_of_work() as uow:
        _key, token = create_api_key(uow, name, ["patients:read"])
    with unit_of_work() as uow:
        row = uow.session.scalar(sa.select(ApiKey).where(ApiKey.name == name))
        assert row.token_hash == hashlib.sha256(token.encode()).digest()
        assert token not in (row.token_prefix + "x")
    principal = authenticate(f"Bearer {token}")
    assert principal.name == name and principal.has("patients:read") and not principal.has("patients:write")
    with unit_of_work() as uow:
        revoke_api_key(uow, name)
    with pytest.raises(Unauthorized):
        authenticate(f"Bearer {token}")


@pytest.mark.parametrize("header", [None, "", "Basic abc", "Bearer ", "Bearer pmk_unknown", "Bearer " + "pmk_" + "x" * 300])
def test_absent_or_unknown_tokens_are_unauthorized(database_url, header):
    with pytest.raises(Unauthorized):
        authenticate(header)


def test_unknown_scopes_are_refused(database_url):
    with pytest.raises(ValidationFailed), unit_of_work() as uow:
        create_api_key(uow, f"k-{uuid.uuid4().hex[:8]}", ["patients:read", "root"])


def test_audit_rows_are_append_only(database_url):
    pid = uuid.uuid4()
    with unit_of_work() as uow:
        audit.record(uow, SYSTEM_CLI, "patient.read", [pid])
    with pytest.raises(sa.exc.DBAPIError), unit_of_work() as uow:
        uow.session.execute(sa.delete(AuditEntry).where(AuditEntry.patient_ids.contains([pid])))
    with pytest.raises(sa.exc.DBAPIError), unit_of_work() as uow:
        uow.session.execute(sa.update(AuditEntry).where(AuditEntry.patient_ids.contains([pid])).values(outcome="x"))
    with unit_of_work() as uow:
        rows = uow.session.scalars(sa.select(AuditEntry).where(AuditEntry.patient_ids.contains([pid]))).all()
        assert [r.outcome for r in rows] == ["success"]
