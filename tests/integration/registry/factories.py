"""Builders for registry integration tests: unique names and identifiers, real transactions."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa

from shared.auth import SYSTEM_CLI
from shared.db import get_engine, unit_of_work
from shared.models import LabOrder, LabResult
from shared.schemas.history import HistoryEntryCreate
from shared.schemas.patients import PatientCreate
from shared.services.history import add_entry
from shared.services.patients import register_patient


def unique_family() -> str:
    return "Reg" + uuid.uuid4().hex[:10]


def body(**overrides: Any) -> PatientCreate:
    data: dict[str, Any] = {"name": {"family": unique_family(), "given": ["Ana"]}, "birth_date": "1981-03-04"}
    data.update(overrides)
    return PatientCreate.model_validate_json(json.dumps(data))


def new_patient(**overrides: Any) -> uuid.UUID:
    with unit_of_work() as uow:
        return register_patient(uow, SYSTEM_CLI, body(**overrides)).id


def new_entry(patient_id: uuid.UUID, **overrides: Any) -> uuid.UUID:
    data = {"category": "condition", "code": {"system": "http://snomed.info/sct", "code": "44054006"}, **overrides}
    with unit_of_work() as uow:
        return add_entry(uow, SYSTEM_CLI, patient_id, HistoryEntryCreate.model_validate_json(json.dumps(data))).id


def new_order_with_result(patient_id: uuid.UUID) -> tuple[uuid.UUID, uuid.UUID]:
    """An order and a final result as the LIS consumer writes them."""
    now = datetime.now(timezone.utc)
    order_id, result_id = uuid.uuid4(), uuid.uuid4()
    with unit_of_work() as uow:
        uow.session.add(LabOrder(id=order_id, patient_id=patient_id, filler_namespace="LIS",
                                 filler_number=uuid.uuid4().hex[:12], code_system="LN", code="2345-7",
                                 code_display="Glucose", status="completed", ordered_at=now))
        uow.flush()
        uow.session.add(LabResult(id=result_id, order_id=order_id, patient_id=patient_id, result_key="LN|2345-7|1",
                                  code_system="LN", code="2345-7", code_display="Glucose", value_type="NM", value="5.4",
                                  units="mmol/L", reference_range="3.9-5.5", abnormal_flags=[], status="F",
                                  observed_at=now))
    return order_id, result_id


def wait_until_blocked(waiters: int = 1, timeout: float = 30.0) -> None:
    """Return once ``waiters`` backends of this database wait on a lock (a synchronisation point,
    not a timing assertion: the test only proceeds once the race is really set up)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with get_engine().connect() as conn:
            blocked = conn.execute(sa.text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )).scalar_one()
        if blocked >= waiters:
            return
        time.sleep(0.05)
    raise AssertionError("the competing transaction never blocked")


def run_in_thread(fn: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    """Run ``fn`` in a thread; the returned dict gets ``result`` or ``error``."""
    out: dict[str, Any] = {}

    def target() -> None:
        try:
            out["result"] = fn()
        except BaseException as exc:  # noqa: BLE001 — handed to the test
            out["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    return thread, out
