"""HTTP entrypoint of the api function: functions-framework --source functions/api/main.py --target api."""

import functions_framework
from flask import Request, Response

import shared.api  # noqa: F401  (registers the routes)
from shared.http.app import handle


@functions_framework.http
def api(request: Request) -> Response:
    return handle(request)
