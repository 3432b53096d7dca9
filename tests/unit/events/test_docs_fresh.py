"""docs/events.md and docs/events/schemas/ are generated from the catalog: stale docs fail here."""

import json

from shared.events import docs
from shared.events.catalog import CATALOG, NO_SUBJECT, dataschema_for
from shared.settings import PROJECT_ROOT
from tests.support.cloudevents_schema import schema_file_for


def test_the_generated_event_docs_are_up_to_date():
    stale = [str(p.relative_to(PROJECT_ROOT)) for p in docs.stale()]
    assert not stale, f"regenerate with `patient-mgt events docs`: {stale}"


def test_every_type_has_a_schema_that_its_dataschema_names():
    for event_type in CATALOG:
        path = schema_file_for(dataschema_for(event_type))
        schema = json.loads(path.read_text())
        assert schema["$id"] == dataschema_for(event_type)
        assert schema["additionalProperties"] is False  # data carries only what the model declares
        assert "subject" not in schema["properties"]


def test_events_md_lists_every_type_with_source_schema_producer_and_consumers():
    text = docs.EVENTS_MD.read_text()
    for event_type, (_model, producer, _desc) in CATALOG.items():
        row = next(line for line in text.splitlines() if line.startswith(f"| `{event_type}` |"))
        subject = "| none |" if event_type in NO_SUBJECT else "| patient id |"
        assert f"`/patient-mgt/{producer.replace('_', '-')}`" in row and subject in row
        assert f"events/schemas/{event_type}.json" in row
    assert "notify (`notify-result-available`)" in text
