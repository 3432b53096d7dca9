"""FHIR Bulk Data export checks shared by the http and e2e tests: what the database holds that an
export of ``_since`` must contain, and every NDJSON line of a manifest's files validated and counted."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from shared.db import unit_of_work
from shared.models import LabOrder, LabResult, Patient
from tests.support.fhir import validate


def expected_ids(since: datetime) -> dict[str, set[str]]:
    """Per type, the ids an export with ``_since=since`` must hold, read from the database."""
    with unit_of_work() as uow:
        def ids(model: Any, *where: Any) -> set[str]:
            return {str(i) for i in uow.session.scalars(sa.select(model.id).where(model.updated_at > since, *where))}
        return {
            "Patient": ids(Patient),
            "ServiceRequest": ids(LabOrder),
            "Observation": ids(LabResult),
            "DiagnosticReport": ids(LabOrder, sa.exists().where(LabResult.order_id == LabOrder.id)),
        }


def exported_ids(manifest: dict[str, Any], download: Callable[[str], tuple[str, bytes]]) -> dict[str, list[str]]:
    """Every file of ``manifest`` downloaded (``download(url)`` → (content type, body)); each line a
    resource of the file's type that validates with fhir.resources; each file's count its line count.
    Returns the ids per type, in file order (a repeat shows up as a duplicate)."""
    out: dict[str, list[str]] = {}
    for item in manifest["output"]:
        content_type, body = download(item["url"])
        assert content_type.split(";")[0] == "application/fhir+ndjson"
        text = body.decode("utf-8")
        assert text.endswith("\n") or not text
        lines = text.splitlines()
        assert len(lines) == item["count"], item
        for line in lines:
            resource = json.loads(line)
            assert resource["resourceType"] == item["type"]
            validate(resource)
            out.setdefault(item["type"], []).append(resource["id"])
    return out
