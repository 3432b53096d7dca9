"""CloudEvent entrypoint of the notify function: functions-framework --source functions/notify/main.py --target notify."""

import functions_framework
from cloudevents.abstract import CloudEvent

from shared.notify.consumer import handle_event


@functions_framework.cloud_event
def notify(event: CloudEvent) -> None:
    handle_event(event)
