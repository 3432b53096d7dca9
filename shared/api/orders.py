"""Lab order routes: a patient's orders with results, one order, placing, changing and cancelling an
order, and the patient's observations that belong to no order."""

from __future__ import annotations

import uuid

from flask import Response

from shared.db import unit_of_work
from shared.http.context import RequestContext, etag, json_response
from shared.http.routing import route
from shared.schemas.orders import ObservationPage, Order, OrderChange, OrderCreate, OrderPage, OrderQuery
from shared.services import orders as service


@route("GET", "/patients/<uuid:patient_id>/orders", scope="patients:read",
       summary="A patient's lab orders with their results, newest first", tag="orders", query=OrderQuery,
       responses={200: OrderPage}, audit_action="order.read")
def list_orders(ctx: RequestContext, patient_id: uuid.UUID) -> Response:
    q = ctx.query(OrderQuery)
    with unit_of_work() as uow:
        rows, next_cursor = service.list_orders(uow, ctx.principal, patient_id, q)
        children = service.child_orders(uow, rows)
        page = OrderPage(items=[service.to_order(o, children) for o in rows], next_cursor=next_cursor)
    return json_response(page)


@route("GET", "/patients/<uuid:patient_id>/observations", scope="patients:read",
       summary="The patient's observations that belong to no order (HL7 v2 PATIENT_OBSERVATION), newest first",
       tag="orders", query=OrderQuery, responses={200: ObservationPage}, audit_action="result.read")
def list_observations(ctx: RequestContext, patient_id: uuid.UUID) -> Response:
    q = ctx.query(OrderQuery)
    with unit_of_work() as uow:
        rows, next_cursor = service.list_observations(uow, ctx.principal, patient_id, q)
        page = ObservationPage(items=[service.to_observation(r) for r in rows], next_cursor=next_cursor)
    return json_response(page)


@route("POST", "/patients/<uuid:patient_id>/orders", scope="patients:write",
       summary="Place a lab order (status requested; the LIS side receives order.requested)", tag="orders",
       body=OrderCreate, responses={201: Order, 409: None}, audit_action="order.create", headers_out=("ETag",))
def place_order(ctx: RequestContext, patient_id: uuid.UUID) -> Response:
    data = ctx.json_body(OrderCreate)
    with unit_of_work() as uow:
        order = service.to_order(service.place_order(uow, ctx.principal, patient_id, data))
    return json_response(order, 201, {"Location": f"/orders/{order.id}", "ETag": etag(order.version)})


@route("GET", "/orders/<uuid:order_id>", scope="patients:read", summary="Read a lab order with its results",
       tag="orders", responses={200: Order}, audit_action="order.read", headers_out=("ETag",))
def read_order(ctx: RequestContext, order_id: uuid.UUID) -> Response:
    with unit_of_work() as uow:
        found = service.get_order(uow, ctx.principal, order_id)
        order = service.to_order(found, service.child_orders(uow, [found]))
    return json_response(order, 200, {"ETag": etag(order.version)})


@route("PATCH", "/orders/<uuid:order_id>", scope="patients:write",
       summary="Change an order's code, priority or notes before the lab accepts it (If-Match required; the LIS receives order.changed)",
       tag="orders", body=OrderChange, headers_in=("If-Match",), responses={200: Order, 409: None}, audit_action="order.update")
def change_order(ctx: RequestContext, order_id: uuid.UUID) -> Response:
    version = ctx.if_match_version()
    data = ctx.json_body(OrderChange)
    with unit_of_work() as uow:
        order = service.to_order(service.change_order(uow, ctx.principal, order_id, data, expected_version=version))
    return json_response(order, 200, {"ETag": etag(order.version)})


@route("POST", "/orders/<uuid:order_id>/cancel", scope="patients:write",
       summary="Cancel an order placed through the API (If-Match required; the LIS receives order.cancelled)",
       tag="orders", headers_in=("If-Match",), responses={200: Order, 409: None}, audit_action="order.cancel")
def cancel_order(ctx: RequestContext, order_id: uuid.UUID) -> Response:
    version = ctx.if_match_version()
    with unit_of_work() as uow:
        order = service.to_order(service.cancel_order(uow, ctx.principal, order_id, expected_version=version))
    return json_response(order, 200, {"ETag": etag(order.version)})
