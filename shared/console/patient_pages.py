"""A patient as the LIS left them: identity, and the lab orders with their results — where a LIS
message page's links lead. Read through the registry's services (audited ``patient.read`` and
``order.read``, as the API's reads are)."""

from __future__ import annotations

import uuid

from flask import Response

from shared.console.web import View, page
from shared.db import unit_of_work
from shared.schemas.orders import OrderQuery
from shared.services import orders, patients


@page("GET", "/patients/<uuid:patient_id>", scope="patients:read")
def patient_page(view: View, patient_id: uuid.UUID) -> Response:
    with unit_of_work() as uow:
        patient = patients.to_resource(patients.get_patient(uow, view.user, patient_id))
        rows, next_cursor = orders.list_orders(uow, view.user, patient_id, OrderQuery(limit=100))
        order_list = [orders.to_order(o) for o in rows]
    return view.render("patient.html", p=patient, orders=order_list, more=next_cursor is not None)
