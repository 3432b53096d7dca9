"""`make dev`'s stack with the MLLP adapter, fed by `patient-mgt lis send --mllp` (the real CLI process)."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import pytest

from shared.devtools.devrun import DevStack
from tests.support import lis_db
from tests.support.hl7_tag import tag
from tests.support.lis_samples import by_file
from tests.support.processes import ROOT

from .conftest import dev_stack

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def dev(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    with dev_stack(database_url, tmp_path_factory.mktemp("devmllp")) as stack:
        yield stack


def _send(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "shared.cli", "lis", "send", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


def _applied(control_id: str, timeout: float = 90.0) -> str:
    from shared.db import unit_of_work  # noqa: PLC0415
    from shared.models import LisMessage  # noqa: PLC0415
    import sqlalchemy as sa  # noqa: PLC0415

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with unit_of_work() as uow:
            status = uow.session.execute(sa.select(LisMessage.status).where(LisMessage.control_id == control_id)).scalar()
        if status:
            return status
        time.sleep(0.25)
    raise AssertionError(f"{control_id} not stored before the timeout")


def test_lis_send_mllp_reaches_lis_consumer_through_the_dev_stack(dev: DevStack, tmp_path):
    assert dev.mllp_address and dev.emulator_host
    runs = [uuid.uuid4().hex[:8] for _ in range(2)]
    samples = [tag(by_file()["aidbox__ADT-A08__1.hl7"].raw, runs[0]), tag(by_file()["pyhl7__ORU-R01__1.hl7"].raw, runs[1])]
    two = tmp_path / "two.hl7"
    two.write_bytes(samples[0].rstrip(b"\r\n") + b"\r" + samples[1])  # two messages in one file
    result = _send("--mllp", dev.mllp_address, str(two))
    assert result.returncode == 0, result.stderr
    assert result.stdout.count(": AA") == 2
    assert _applied(f"MSG-A08-002-{runs[0]}") == "processed"
    assert _applied(f"CNTRL-3456-{runs[1]}") == "processed"


def test_lis_send_mllp_reports_what_was_not_accepted(dev: DevStack, tmp_path):
    junk = tmp_path / "junk.txt"
    junk.write_bytes(b"not a lab message\n")
    result = _send("--mllp", dev.mllp_address, str(junk))
    assert result.returncode == 1 and "holds no HL7 message" in result.stderr
