"""CloudEvent entrypoint of the LIS consumer: functions-framework --source functions/lis_consumer/main.py --target lis_consumer."""

import functions_framework
from cloudevents.abstract import CloudEvent

from shared.lis.consumer import handle_event


@functions_framework.cloud_event
def lis_consumer(event: CloudEvent) -> None:
    handle_event(event)
