"""CloudEvent entrypoint of the jobs function: functions-framework --source functions/jobs/main.py --target jobs."""

import flask
import functions_framework
from cloudevents.abstract import CloudEvent

from shared.http import cloudevent_guard, function_app
from shared.jobs.consumer import handle_event

if flask.has_app_context():  # functions-framework executes this module inside its app's context
    cloudevent_guard.install(flask.current_app)
    function_app.install(flask.current_app, probes=True)


@functions_framework.cloud_event
def jobs(event: CloudEvent) -> None:
    handle_event(event)
