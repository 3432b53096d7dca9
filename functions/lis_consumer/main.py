"""Entrypoint of the LIS consumer: functions-framework --source functions/lis_consumer/main.py --target lis_consumer.

CloudEvents arrive at `lis_consumer`; raw Pub/Sub push bodies, push-token checks and requests
that are not CloudEvents are answered by the hook installed on the app (see shared/lis/http.py).
"""

import flask
import functions_framework
from cloudevents.abstract import CloudEvent

from shared.http import function_app
from shared.lis import http
from shared.lis.consumer import handle_event

if flask.has_app_context():  # functions-framework executes this module inside its app's context
    http.install(flask.current_app)
    function_app.install(flask.current_app, probes=True)


@functions_framework.cloud_event
def lis_consumer(event: CloudEvent) -> None:
    handle_event(event)
