"""CloudEvent entrypoint of the notify function: functions-framework --source functions/notify/main.py --target notify."""

import flask
import functions_framework
from cloudevents.abstract import CloudEvent

from shared.http import cloudevent_guard, function_app
from shared.notify.consumer import handle_event

if flask.has_app_context():  # functions-framework executes this module inside its app's context
    cloudevent_guard.install(flask.current_app)
    function_app.install(flask.current_app, probes=True)


@functions_framework.cloud_event
def notify(event: CloudEvent) -> None:
    handle_event(event)
