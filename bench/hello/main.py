"""The framework's ceiling: a functions-framework function that does nothing.

Started exactly like the project's functions (same gunicorn settings), it answers every request,
and accepts any POST — the benchmark also uses it as the CloudEvents sink of the api process.
"""

import functions_framework
from flask import Request


@functions_framework.http
def hello(request: Request) -> tuple[str, int, dict[str, str]]:
    return "ok", 200, {"Content-Type": "text/plain"}
