"""A canonical dump of what one generated feed (`tests.support.hl7_gen`, one namespace) left in the
database: its patients, identifiers, orders and results, without what legitimately differs between
two runs (database ids, MRNs, timestamps of our own writes, version counters, lis_messages ids),
and with the namespace replaced so two runs of the same feed compare equal."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa

from shared.db import unit_of_work
from shared.models import MRN_SYSTEM, LabOrder, LabResult, Patient, PatientIdentifier

_PATIENT_FIELDS = ("status", "family", "given", "prefix", "suffix", "family_norm", "first_given_norm", "birth_date",
                   "sex", "phone", "email", "address", "source", "lis_applied_at", "lis_applied_control_id")
_ORDER_FIELDS = ("placer_namespace", "placer_number", "filler_namespace", "filler_number", "code_system", "code",
                 "code_display", "status", "priority", "notes", "ordered_at", "source", "lis_applied_at",
                 "lis_field_stamps")
_RESULT_FIELDS = ("result_key", "code_system", "code", "code_display", "value_type", "value", "values", "units",
                  "reference_range", "abnormal_flags", "status", "observed_at", "notes", "lis_applied_at", "lis_stamp",
                  "version")


def dump(namespace: str) -> dict[str, Any]:
    with unit_of_work() as uow:
        s = uow.session
        patient_ids = s.scalars(sa.select(PatientIdentifier.patient_id).where(PatientIdentifier.system == f"HOSP-{namespace}")).all()
        patients = s.execute(sa.select(Patient.__table__).where(Patient.id.in_(patient_ids))).all()
        identifiers = s.execute(sa.select(PatientIdentifier.patient_id, PatientIdentifier.system, PatientIdentifier.value,
                                          PatientIdentifier.type)
                                .where(PatientIdentifier.patient_id.in_(patient_ids), PatientIdentifier.system != MRN_SYSTEM)).all()
        orders = s.execute(sa.select(LabOrder.__table__).where(LabOrder.patient_id.in_(patient_ids))).all()
        results = s.execute(sa.select(LabResult.__table__).where(LabResult.order_id.in_([o.id for o in orders]))).all()
    ids_of: dict[Any, list[str]] = {}
    for i in identifiers:
        ids_of.setdefault(i.patient_id, []).append(f"{i.system}|{i.value}|{i.type}")
    patient_key = {pid: ",".join(sorted(v)) for pid, v in ids_of.items()}
    order_key = {o.id: f"{o.placer_number}|{o.filler_number}" for o in orders}
    out = {
        "patients": {patient_key[p.id]: {f: getattr(p, f) for f in _PATIENT_FIELDS} for p in patients},
        "orders": {order_key[o.id]: {"patient": patient_key[o.patient_id], **{f: getattr(o, f) for f in _ORDER_FIELDS}}
                   for o in orders},
        "results": {
            f"{order_key[r.order_id]}#{r.result_key}": {
                "patient": patient_key[r.patient_id],
                **{f: getattr(r, f) for f in _RESULT_FIELDS},
                "previous_versions": [{k: v for k, v in version.items() if k != "message_id"} for version in r.previous_versions],
            }
            for r in results
        },
    }
    text = json.dumps(out, sort_keys=True, default=str, ensure_ascii=False).replace(namespace, "{NS}")
    return json.loads(text)
