"""CloudEvent entrypoint of the jobs function: functions-framework --source functions/jobs/main.py --target jobs."""

import functions_framework
from cloudevents.abstract import CloudEvent

from shared.jobs.consumer import handle_event


@functions_framework.cloud_event
def jobs(event: CloudEvent) -> None:
    handle_event(event)
