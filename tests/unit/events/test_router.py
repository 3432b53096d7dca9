"""The dev router: Trigger fan-out with Knative's retry/backoff/dead-letter rules, PingSource events,
and the broker ingress, against real HTTP endpoints on 127.0.0.1."""

import base64
import json
from datetime import datetime, timezone
from contextlib import ExitStack

import pytest
import requests

from shared.devtools.devrouter.manifests import parse_documents
from shared.devtools.devrouter.router import Router, serve
from shared.events.publishing import OutgoingEvent
from tests.support.sink import http_sink
from tests.support.waiting import wait_for


def trigger(name, event_type, service, *, retry=2, policy="exponential", delay="PT0.01S", dls=True):
    delivery = {"retry": retry, "backoffPolicy": policy, "backoffDelay": delay}
    if dls:
        delivery["deadLetterSink"] = {"ref": {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "jobs"},
                                      "uri": "/dead-letter"}
    return {"apiVersion": "eventing.knative.dev/v1", "kind": "Trigger", "metadata": {"name": name, "namespace": "ns"},
            "spec": {"broker": "default", "filter": {"attributes": {"type": event_type}},
                     "subscriber": {"ref": {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": service}},
                     "delivery": delivery}}


def ping(name, *, schedule="0 0 1 1 *", content_type=None, data=None):
    spec = {"schedule": schedule, "sink": {"ref": {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "jobs"}}}
    if content_type is not None:
        spec["contentType"] = content_type
    if data is not None:
        spec["data"] = data
    return {"apiVersion": "sources.knative.dev/v1", "kind": "PingSource", "metadata": {"name": name, "namespace": "ns"}, "spec": spec}


def event(event_type, event_id="e1"):
    return OutgoingEvent({"specversion": "1.0", "id": event_id, "source": "/patient-mgt/api", "type": event_type,
                          "subject": "p1", "datacontenttype": "application/json"}, b'{"patient_id":"p1"}')


@pytest.fixture()
def sinks():
    """notify and jobs stand-ins; tests set their ``respond``."""
    with ExitStack() as stack:
        yield {name: stack.enter_context(http_sink()) for name in ("notify", "jobs")}


def make_router(docs, sinks, **kwargs):
    router = Router(parse_documents(docs), {name: sink.url for name, sink in sinks.items()}, **kwargs)
    return router


def test_an_event_fans_out_to_every_matching_trigger_once(sinks):
    router = make_router([trigger("n", "a.v1", "notify"), trigger("j", "a.v1", "jobs"), trigger("x", "b.v1", "notify")], sinks)
    try:
        assert router.accept(event("a.v1")) == 2
        wait_for(lambda: sinks["notify"].requests and sinks["jobs"].requests, what="both deliveries")
        assert router.accept(event("c.v1", "e2")) == 0
    finally:
        router.stop()
    assert sinks["notify"].ids() == ["e1"] and sinks["jobs"].ids() == ["e1"]
    assert sinks["notify"].requests[0].path == "/" and sinks["notify"].requests[0].body == b'{"patient_id":"p1"}'
    assert any(d["event_id"] == "e2" and d["outcome"] == "no_trigger" for d in router.deliveries)


def test_a_retryable_failure_is_retried_with_backoff_until_it_is_accepted(sinks):
    statuses = iter([503, 429, 200])
    sinks["notify"].respond = lambda _r: next(statuses)
    router = make_router([trigger("n", "a.v1", "notify", retry=3)], sinks)
    try:
        router.accept(event("a.v1"))
        wait_for(lambda: [d for d in router.deliveries if d["outcome"] == "delivered"], what="delivery")
    finally:
        router.stop()
    assert sinks["notify"].ids() == ["e1"] * 3 and sinks["jobs"].requests == []
    [done] = [d for d in router.deliveries if d["outcome"] == "delivered"]
    assert done["attempts"] == 3 and done["trigger"] == "n"


def test_exhausted_retries_send_the_event_to_the_dead_letter_sink_with_knative_error_extensions(sinks):
    sinks["notify"].respond = lambda _r: 503
    router = make_router([trigger("n", "a.v1", "notify", retry=2)], sinks)
    try:
        router.accept(event("a.v1"))
        [dead] = wait_for(lambda: sinks["jobs"].requests, what="the dead letter")
    finally:
        router.stop()
    assert len(sinks["notify"].requests) == 3  # the first attempt and 2 retries
    assert dead.path == "/dead-letter"
    assert dead.header("ce-id") == "e1" and dead.header("ce-type") == "a.v1" and dead.body == b'{"patient_id":"p1"}'
    assert dead.header("ce-knativeerrorcode") == "503"
    assert dead.header("ce-knativeerrordest") == sinks["notify"].url
    assert json.loads(base64.b64decode(dead.header("ce-knativeerrordata"))) == {"status": "retry", "reason": "test"}


def test_a_status_that_retrying_cannot_fix_goes_to_the_dead_letter_sink_at_once(sinks):
    sinks["notify"].respond = lambda _r: 400
    router = make_router([trigger("n", "a.v1", "notify", retry=5)], sinks)
    try:
        router.accept(event("a.v1"))
        wait_for(lambda: sinks["jobs"].requests, what="the dead letter")
    finally:
        router.stop()
    assert len(sinks["notify"].requests) == 1
    assert sinks["jobs"].requests[0].header("ce-knativeerrorcode") == "400"


def test_without_a_dead_letter_sink_an_exhausted_event_is_logged_as_lost(sinks):
    sinks["notify"].respond = lambda _r: 500
    router = make_router([trigger("n", "a.v1", "notify", retry=1, dls=False)], sinks)
    try:
        router.accept(event("a.v1"))
        wait_for(lambda: [d for d in router.deliveries if d["outcome"] == "lost"], what="the lost outcome")
    finally:
        router.stop()
    assert len(sinks["notify"].requests) == 2 and sinks["jobs"].requests == []


def test_pingsource_events_are_shaped_as_knative_sends_them(sinks):
    router = make_router([ping("with-json", content_type="application/json", data='{"job": "outbox-sweep"}'),
                          ping("bare", data="hello"), ping("empty")], sinks, pingsources=False)
    try:
        for source in router.manifests.pingsources:
            router.fire(source)
    finally:
        router.stop()
    with_json, bare, empty = sinks["jobs"].requests
    assert with_json.header("ce-type") == "dev.knative.sources.ping" and with_json.header("ce-specversion") == "1.0"
    assert with_json.header("ce-source") == "/apis/v1/namespaces/ns/pingsources/with-json"
    assert with_json.header("Content-Type") == "application/json" and json.loads(with_json.body) == {"job": "outbox-sweep"}
    assert with_json.header("ce-time") and with_json.header("ce-id")
    assert bare.header("Content-Type") is None and bare.header("ce-datacontenttype") is None and bare.body == b"hello"
    assert empty.body == b"" and empty.header("Content-Type") is None
    assert len({r.header("ce-id") for r in sinks["jobs"].requests}) == 3
    assert all(r.header("ce-subject") is None and r.header("ce-dataschema") is None for r in sinks["jobs"].requests)


def test_pingsources_fire_on_their_schedule_with_a_new_id_each_tick(sinks):
    # The router's wall clock stands 0.3 s before a minute boundary: "* * * * *" is due almost at once.
    offset = datetime(2026, 1, 1, 12, 0, 59, 700000, tzinfo=timezone.utc) - datetime.now(timezone.utc)
    router = make_router([ping("every-minute", schedule="* * * * *", content_type="application/json", data='{"job": "x"}')],
                         sinks, now=lambda: datetime.now(timezone.utc) + offset)
    try:
        wait_for(lambda: len(sinks["jobs"].requests) >= 1, timeout=10, what="the scheduled tick")
        router.fire(router.manifests.pingsources[0])  # the next tick, without waiting a minute
        wait_for(lambda: len(sinks["jobs"].requests) >= 2, timeout=10, what="a second tick")
    finally:
        router.stop()
    ids = sinks["jobs"].ids()
    assert len(set(ids)) == len(ids) == 2


def test_the_ingress_accepts_binary_and_structured_cloudevents_and_refuses_other_bodies(sinks):
    router = make_router([trigger("n", "a.v1", "notify")], sinks)
    server = serve(router, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.server_port}/patient-mgt/default"
    try:
        binary = requests.post(url, data=b'{"k":1}', timeout=5, headers={
            "ce-specversion": "1.0", "ce-id": "b1", "ce-source": "/x", "ce-type": "a.v1", "ce-subject": "p%201",
            "Content-Type": "application/json"})
        structured = requests.post(url, timeout=5, headers={"Content-Type": "application/cloudevents+json"}, data=json.dumps(
            {"specversion": "1.0", "id": "s1", "source": "/x", "type": "a.v1", "datacontenttype": "application/json", "data": {"k": 2}}))
        missing_id = requests.post(url, data=b"{}", timeout=5, headers={
            "ce-specversion": "1.0", "ce-source": "/x", "ce-type": "a.v1"})
        plain = requests.post(url, json={"hello": "world"}, timeout=5)
        assert (binary.status_code, structured.status_code, missing_id.status_code, plain.status_code) == (202, 202, 400, 400)
        assert binary.json() == {"status": "accepted", "triggers": 1}
        wait_for(lambda: len(sinks["notify"].requests) == 2, what="both deliveries")
        assert requests.get(url.rsplit("/", 2)[0] + "/healthz", timeout=5).status_code == 200
    finally:
        server.shutdown()
        router.stop()
    by_id = {r.header("ce-id"): r for r in sinks["notify"].requests}
    assert by_id["b1"].header("ce-subject") == "p%201" and json.loads(by_id["b1"].body) == {"k": 1}
    assert json.loads(by_id["s1"].body) == {"k": 2} and by_id["s1"].header("Content-Type") == "application/json"
