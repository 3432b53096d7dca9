"""Lab orders and their results: written by the LIS consumer (and POST /patients/{id}/orders), read by the API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from shared.models.base import Base, new_id, utcnow
from shared.models import patients as _patients  # noqa: F401  (the table its foreign keys reference)

# The placer namespace of orders placed through the api (POST /patients/{id}/orders); the LIS
# consumer matches its messages against it too (shared/lis/orders.py).
from shared.placer import PLACER_NAMESPACE  # noqa: E402, F401 — defined without SQLAlchemy (the LIS fast path's)


class LabOrder(Base):
    __tablename__ = "lab_orders"
    __table_args__ = (
        # Placer and filler numbers identify an order within the namespace of the system that assigned them.
        Index("uq_lab_orders_placer", "placer_namespace", "placer_number", unique=True,
              postgresql_where=text("placer_number IS NOT NULL")),
        Index("uq_lab_orders_filler", "filler_namespace", "filler_number", unique=True,
              postgresql_where=text("filler_number IS NOT NULL")),
        # A patient's orders, newest first (GET /patients/{id}/orders page order).
        Index("ix_lab_orders_patient_created", "patient_id", "created_at", "id"),
        Index("ix_lab_orders_parent_order_id", "parent_order_id"),
        # A result's child orders (FHIR Observation.hasMember, result_groups; migration 0015).
        Index("ix_lab_orders_parent_result_id", "parent_result_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id"), index=True)
    placer_namespace: Mapped[str] = mapped_column(String(200), default="")
    placer_number: Mapped[str | None] = mapped_column(String(100))
    filler_namespace: Mapped[str] = mapped_column(String(200), default="")
    filler_number: Mapped[str | None] = mapped_column(String(100))
    code_system: Mapped[str | None] = mapped_column(String(200))
    code: Mapped[str | None] = mapped_column(String(100))
    code_display: Mapped[str | None] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(32), default="requested")
    priority: Mapped[str | None] = mapped_column(String(32))
    notes: Mapped[str | None] = mapped_column(Text)
    ordered_at: Mapped[datetime | None]
    source: Mapped[str] = mapped_column(String(16), default="lis")
    # MSH-7 of the newest LIS message applied to this order (order-of-arrival safety).
    lis_applied_at: Mapped[datetime | None]
    # Per field, the (MSH-7, MSH-4, MSH-10) stamp of the LIS message that last wrote it (migration 0003_lis).
    lis_field_stamps: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default=text("'{}'::jsonb"))
    # A child order (OBR-29/OBR-26: e.g. the susceptibility panel of one isolate of a culture): its
    # parent order and the parent's result it reports about (migration 0010).
    parent_order_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("lab_orders.id"))
    parent_result_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("lab_results.id", use_alter=True))
    # Orders placed here: the LIS acknowledged the order message / accepted the order (migration 0013).
    sent_to_lis_at: Mapped[datetime | None]
    lis_accepted_at: Mapped[datetime | None]
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    # Results written by one message share created_at: the key makes the order the same on every read.
    results: Mapped[list[LabResult]] = relationship(back_populates="order",
                                                    order_by="(LabResult.created_at, LabResult.result_key)",
                                                    foreign_keys="LabResult.order_id")


class LabResult(Base):
    """A result of an order, or — ``order_id`` null — an observation of the patient (ORU's
    PATIENT_OBSERVATION: height, pregnancy status…), keyed within the patient."""

    __tablename__ = "lab_results"
    __table_args__ = (
        Index("uq_lab_results_key", "order_id", "result_key", unique=True),
        Index("uq_lab_results_patient_key", "patient_id", "result_key", unique=True,
              postgresql_where=text("order_id IS NULL")),
        # FHIR Observation?code= across patients, newest first (migration 0012_fhir_lab_search).
        Index("ix_lab_results_code_created", "code", "created_at", "id"),
        # A patient's results by observation time (OBX-14, else when stored): GET /patients/{id}/results,
        # and one analyte's trend (migration 0014_results_by_observation). They replace (patient_id).
        Index("ix_lab_results_patient_observed", "patient_id", text("coalesce(observed_at, created_at)"), "id"),
        Index("ix_lab_results_patient_code_observed", "patient_id", "code", text("coalesce(observed_at, created_at)"), "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    order_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("lab_orders.id"), index=True)
    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id"))
    # Identifies the observation within its order (code system + code + sub-id), so a corrected
    # result replaces the one it corrects.
    result_key: Mapped[str] = mapped_column(String(400))
    # OBX-4: tells apart same-coded observations of one order (isolate 1, isolate 2…).
    sub_id: Mapped[str | None] = mapped_column(String(64))
    code_system: Mapped[str | None] = mapped_column(String(200))
    code: Mapped[str | None] = mapped_column(String(100))
    code_display: Mapped[str | None] = mapped_column(String(300))
    value_type: Mapped[str | None] = mapped_column(String(8))
    value: Mapped[str | None] = mapped_column(Text)
    units: Mapped[str | None] = mapped_column(String(100))
    reference_range: Mapped[str | None] = mapped_column(String(200))
    abnormal_flags: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list)
    status: Mapped[str | None] = mapped_column(String(8))
    observed_at: Mapped[datetime | None]
    # OBX-14 (or the OBR-7 standing in for it) as sent: its precision and whether it had an offset,
    # which the instant above cannot tell (FHIR effectiveDateTime; migration 0015). NULL: not HL7 v2.
    observed_text: Mapped[str | None] = mapped_column(String(32))
    notes: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list)
    lis_applied_at: Mapped[datetime | None]
    # Every OBX-5 repetition (``value`` holds them joined by newlines when there are several), the
    # (MSH-7, MSH-4, MSH-10) stamp and the lis_messages row of the current version (migration 0003_lis).
    values: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list, server_default=text("'{}'::text[]"))
    lis_stamp: Mapped[list[str] | None] = mapped_column(JSONB)
    lis_message_id: Mapped[uuid.UUID | None]
    version: Mapped[int] = mapped_column(Integer, default=1)
    previous_versions: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    order: Mapped[LabOrder | None] = relationship(back_populates="results", foreign_keys=[order_id])
