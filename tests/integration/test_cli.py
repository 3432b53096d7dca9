import os
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from shared.db import unit_of_work
from shared.models import ApiKey

BIN = Path(sys.executable).parent / "patient-mgt"


def run(*args, url):
    return subprocess.run([str(BIN), *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "DATABASE_URL": url})


def test_apikey_create_prints_the_token_last_and_stores_only_its_hash(database_url):
    out = run("apikey", "create", "--name", "cli-desk", "--scopes", "patients:read,patients:write", url=database_url)
    assert out.returncode == 0, out.stderr
    token = out.stdout.strip().splitlines()[-1]
    assert token.startswith("pmk_")
    with unit_of_work() as uow:
        key = uow.session.scalar(sa.select(ApiKey).where(ApiKey.name == "cli-desk"))
        assert key.scopes == ["patients:read", "patients:write"]
        assert token.encode() not in key.token_hash
    listed = run("apikey", "list", url=database_url)
    assert "cli-desk" in listed.stdout and token not in listed.stdout
    assert run("apikey", "revoke", "--name", "cli-desk", url=database_url).returncode == 0
    assert "revoked" in run("apikey", "list", url=database_url).stdout
    bad = run("apikey", "create", "--name", "x", "--scopes", "root", url=database_url)
    assert bad.returncode == 2 and "scopes" in bad.stderr


def test_migrate_on_an_up_to_date_database_is_a_noop(database_url):
    out = run("migrate", url=database_url)
    assert out.returncode == 0 and "already up to date" in out.stdout
