"""HTTP entrypoint of the api function: functions-framework --source functions/api/main.py --target api.

Importing this registers no route: each route's module, the operator console and OpenAPI load on the
first request that needs them (``shared.api``), so a cold instance's first request carries only its own.
"""

import functools
from collections.abc import Callable

import flask
import functions_framework
from flask import Request, Response

import shared.api  # noqa: F401  (the route table's index; route modules load on first match)
from shared.console import PREFIX
from shared.http import function_app, routing
from shared.http.app import handle

if flask.has_app_context():  # functions-framework executes this module inside its app's context
    function_app.install(flask.current_app, probes=False)  # /favicon.ico, /robots.txt: problem+json too
    routing.match_in_flask(flask.current_app._get_current_object())  # Flask's one match finds the route


@functions_framework.http
def api(request: Request) -> Response:
    if request.path == PREFIX or request.path.startswith(PREFIX + "/"):
        return _console()(request)
    return handle(request)


@functools.cache
def _console() -> Callable[[Request], Response]:
    """The operator console, loaded on its first request (an import is idempotent under concurrency)."""
    import shared.console.routes  # noqa: F401, PLC0415  (registers the console's pages)
    from shared.console.app import handle as console  # noqa: PLC0415

    return console
