"""HTTP entrypoint of the api function: functions-framework --source functions/api/main.py --target api."""

import flask
import functions_framework
from flask import Request, Response

import shared.api  # noqa: F401  (registers the routes)
import shared.console.routes  # noqa: F401  (registers the operator console's pages)
from shared.console.app import handle as console
from shared.console.web import PREFIX
from shared.http import function_app
from shared.http.app import handle

if flask.has_app_context():  # functions-framework executes this module inside its app's context
    function_app.install(flask.current_app, probes=False)  # /favicon.ico, /robots.txt: problem+json too


@functions_framework.http
def api(request: Request) -> Response:
    if request.path == PREFIX or request.path.startswith(PREFIX + "/"):
        return console(request)
    return handle(request)
