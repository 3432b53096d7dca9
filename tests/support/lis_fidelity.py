"""The real messages of tests/fixtures/hl7-fidelity delivered to the LIS consumer in-process, and
what the API then says about them (the tests assert stored state through the API)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shared.lis.ingest import PartOutcome
from tests.conftest import auth
from tests.support.hl7_tag import tag
from tests.support.lis_ingest import one

FIDELITY = Path(__file__).resolve().parents[1] / "fixtures" / "hl7-fidelity"
SAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "hl7"


def raw(name: str) -> bytes:
    """A fidelity fixture, or (``hl7/…``) one of the older samples."""
    if name.startswith("hl7/"):
        return (SAMPLES / name[4:]).read_bytes()
    return (FIDELITY / name).read_bytes()


def send(name: str, run: str, *, edit: Callable[[bytes], bytes] | None = None, message_id: str | None = None) -> PartOutcome:
    """Deliver fixture `name` tagged for run `run` (after `edit`, if given) as one Pub/Sub push."""
    data = tag(raw(name), run)
    return one(edit(data) if edit else data, message_id)


class Api:
    """GETs through the api function with one token holding every read scope."""

    def __init__(self, client: Any, token: str) -> None:
        self.client, self.headers = client, auth(token)

    def get(self, path: str, **query: Any) -> Any:
        response = self.client.get(path, query_string=query, headers=self.headers)
        assert response.status_code == 200, (path, response.status_code, response.get_data(as_text=True))
        return response.get_json()

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.client.post(path, headers=self.headers, **kwargs)

    def message(self, message_id: uuid.UUID | None) -> dict[str, Any]:
        return self.get(f"/lis/messages/{message_id}")

    def patient_by_identifier(self, system: str, value: str) -> dict[str, Any] | None:
        found = self.get("/patients", identifier=f"{system}|{value}")["items"]
        assert len(found) <= 1
        return found[0] if found else None

    def orders(self, patient_id: uuid.UUID | str) -> list[dict[str, Any]]:
        return self.get(f"/patients/{patient_id}/orders", limit=100)["items"]

    def observations(self, patient_id: uuid.UUID | str) -> list[dict[str, Any]]:
        return self.get(f"/patients/{patient_id}/observations", limit=100)["items"]

    def results(self, patient_id: uuid.UUID | str) -> dict[str, list[tuple[Any, ...]]]:
        """Per order (by filler number, else placer number): (code, sub_id, value, status) of its results,
        sorted (results one message wrote have no order of their own)."""
        return {o["filler_number"] or o["placer_number"]: sorted(((r["code"]["code"], r["sub_id"], r["value"], r["status"])
                                                                 for r in o["results"]), key=repr)
                for o in self.orders(patient_id)}
