"""The dev router reads the production Knative manifests; these are the rules it applies."""

import pytest

from shared.devtools.devrouter.manifests import Delivery, ManifestError, delivery_for, load, parse_documents, parse_duration
from shared.devtools.devrun import SERVICE_NAMES
from shared.events.catalog import CATALOG


def test_every_trigger_in_knative_is_routable_locally():
    manifests = load()
    assert manifests.triggers, "knative/ declares no Trigger"
    for trigger in manifests.triggers:
        assert trigger.filter.get("type") in CATALOG, trigger.name
        assert trigger.subscriber.kind == "Service" and trigger.subscriber.name in SERVICE_NAMES.values(), trigger.name
        delivery = delivery_for(trigger, manifests.brokers)
        assert delivery.dead_letter_sink is not None and delivery.dead_letter_sink.name in SERVICE_NAMES.values()


def test_every_pingsource_in_knative_has_a_valid_schedule_and_a_local_sink():
    from shared.cron import parse

    manifests = load()
    assert manifests.pingsources
    for source in manifests.pingsources:
        parse(source.schedule, source.timezone)
        assert source.sink.name in SERVICE_NAMES.values()
        assert source.source == f"/apis/v1/namespaces/{source.namespace}/pingsources/{source.name}"


@pytest.mark.parametrize("text, seconds", [("PT1S", 1), ("PT0.5S", 0.5), ("PT2M", 120), ("PT1H30M", 5400), ("P1DT1S", 86401)])
def test_iso8601_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["1s", "PT", "P", "PTS", "T1S"])
def test_bad_durations_are_refused(text):
    with pytest.raises(ManifestError):
        parse_duration(text)


def test_backoff_follows_knative_exponential_and_linear_policies():
    exponential = Delivery(retry=10, backoff_policy="exponential", backoff_delay=1.0)
    assert [exponential.backoff(n) for n in range(4)] == [1, 2, 4, 8]
    linear = Delivery(retry=10, backoff_policy="linear", backoff_delay=0.5)
    assert [linear.backoff(n) for n in range(4)] == [0, 0.5, 1.0, 1.5]


def _trigger(name, delivery=None, **spec):
    doc = {"apiVersion": "eventing.knative.dev/v1", "kind": "Trigger", "metadata": {"name": name, "namespace": "ns"},
           "spec": {"broker": "default", "filter": {"attributes": {"type": "a.b"}},
                    "subscriber": {"ref": {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "jobs"}}, **spec}}
    if delivery:
        doc["spec"]["delivery"] = delivery
    return doc


def test_a_trigger_without_delivery_uses_its_brokers():
    broker = {"apiVersion": "eventing.knative.dev/v1", "kind": "Broker", "metadata": {"name": "default", "namespace": "ns"},
              "spec": {"delivery": {"retry": 3, "backoffPolicy": "linear", "backoffDelay": "PT2S",
                                    "deadLetterSink": {"ref": {"kind": "Service", "name": "jobs"}, "uri": "/dead-letter"}}}}
    m = parse_documents([broker, _trigger("t1"), _trigger("t2", {"retry": 1})])
    assert delivery_for(m.triggers[0], m.brokers) == Delivery(retry=3, backoff_policy="linear", backoff_delay=2.0,
                                                               dead_letter_sink=m.brokers[0].delivery.dead_letter_sink)
    assert delivery_for(m.triggers[1], m.brokers).retry == 1 and delivery_for(m.triggers[1], m.brokers).dead_letter_sink is None


def test_filters_match_every_listed_attribute_exactly():
    m = parse_documents([_trigger("t", filter={"attributes": {"type": "a.b", "source": "/x"}})])
    assert m.triggers[0].matches({"type": "a.b", "source": "/x", "id": "1"})
    assert not m.triggers[0].matches({"type": "a.b", "source": "/y"})
    assert not m.triggers[0].matches({"type": "a.bc", "source": "/x"})


def test_pingsource_defaults_and_data():
    doc = {"apiVersion": "sources.knative.dev/v1", "kind": "PingSource", "metadata": {"name": "p"},
           "spec": {"dataBase64": "c29tZSBkYXRh", "contentType": "text/plain", "sink": {"ref": {"kind": "Service", "name": "jobs"}}}}
    [p] = parse_documents([doc]).pingsources
    assert (p.schedule, p.namespace, p.data, p.content_type, p.timezone) == ("* * * * *", "default", b"some data", "text/plain", None)


@pytest.mark.parametrize("docs", [
    [_trigger("same"), _trigger("same")],
    [_trigger("t", {"backoffPolicy": "random"})],
    [{"apiVersion": "sources.knative.dev/v1", "kind": "PingSource", "metadata": {"name": "p"},
      "spec": {"data": "x", "dataBase64": "eA==", "sink": {"ref": {"kind": "Service", "name": "jobs"}}}}],
    [_trigger("t", filters=[{"exact": {"type": "a"}}])],
])
def test_manifests_the_router_cannot_honour_are_errors(docs):
    with pytest.raises(ManifestError):
        parse_documents(docs)


def test_other_kinds_are_ignored():
    svc = {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "metadata": {"name": "jobs"}, "spec": {}}
    m = parse_documents([svc, None, "text"])
    assert (m.brokers, m.triggers, m.pingsources) == ([], [], [])
