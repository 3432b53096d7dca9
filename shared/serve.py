"""``python -m shared.serve``: run one function exactly as ``functions-framework`` does, except that
what gunicorn answers by itself is problem+json.

functions-framework's command builds the function's Flask app and runs it in gunicorn. gunicorn
answers a request it cannot parse (an invalid character in a header, a request line too long, a
malformed chunked body) itself, before Flask sees it, with an HTML page quoting the offending text.
This command takes functions-framework's options and variables (``--target``/``FUNCTION_TARGET``,
``--source``/``FUNCTION_SOURCE``, ``--signature-type``/``FUNCTION_SIGNATURE_TYPE``, ``--host``/
``HOST``, ``--port``/``PORT``, ``--debug``/``DEBUG``; ``THREADS``, ``WORKERS`` and the timeout are read
by functions-framework's gunicorn application as before) and builds the same app and server, with four
changes (``GUNICORN_OPTIONS``): the master imports the function with the garbage collector off and freezes
its objects out of the collector's reach before it forks (``gc.freeze``: a worker's collections would
otherwise copy the pages it shares), the collector on again from there; each worker opens
its first database connection in the background as it starts (``shared.db.start_warm_up``: not on the first
request's path; the api loads the ORM there only once it has been idle); gunicorn's worker is
:class:`ProblemWorker`, whose error answer keeps gunicorn's status and reason but carries a problem+json
body that quotes nothing; and gunicorn's control server is off (``control_socket_disable``: gunicorn ≥
25.1 otherwise opens a Unix socket under ``$HOME/.gunicorn``, which is read-only in the image, and
logged an error at every start; nobody manages a pod's gunicorn through a socket inside it).
``--debug`` (``make dev``) runs Flask's development server with the reloader but, unlike functions-framework's ``--debug``, never
Werkzeug's interactive debugger (a Python console behind a PIN printed to the log, one request away
from anyone who reaches the port); Werkzeug's request lines are dropped there (their query strings can
be patient data, and the api logs each request itself).

The Dockerfile's CMD, ``make dev`` (``shared.devtools.devrun``) and the end-to-end tests start every function
with this command. What the Flask app itself would answer in HTML is ``shared.http.function_app``'s.
"""

from __future__ import annotations

import gc
import json
import logging
import socket
import sys
from typing import Any

import click
from functions_framework import create_app
from functions_framework._http import create_server
from gunicorn import util
from gunicorn.workers.gthread import ThreadWorker

from shared.http.problems import PROBLEM_CONTENT_TYPE, internal_error, problem_body
from shared.log import configure_logging

DETAILS = {
    400: "The request is not valid HTTP/1.1 (request line, header or body framing) and was not processed",
    414: "The request line is too long",
    431: "The request's header fields are too large",
}


class _Captured:
    """The client socket as gunicorn's error writer sees it: what is written is kept, not sent."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self.written = b""

    def sendall(self, data: bytes) -> None:
        self.written += data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


def error_response(status: int, reason: str) -> bytes:
    """The whole HTTP/1.1 response gunicorn's error page is replaced with."""
    if status >= 500:
        body = internal_error(None).get_data()
    else:
        slug = reason.lower().replace(" ", "-")
        body = json.dumps(problem_body(status, slug, reason, DETAILS.get(status, reason))).encode()
    head = (f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\nContent-Type: {PROBLEM_CONTENT_TYPE}\r\n"
            f"Cache-Control: no-store\r\nContent-Length: {len(body)}\r\n\r\n")
    return head.encode("latin-1") + body


class ProblemWorker(ThreadWorker):
    """gunicorn's threaded worker (functions-framework's), answering its own errors in problem+json."""

    def handle_error(self, req: Any, client: socket.socket, addr: Any, exc: BaseException) -> None:
        # gunicorn decides the status (and logs); only the page it would send is replaced.
        captured = _Captured(client)
        super().handle_error(req, captured, addr, exc)
        status_line = captured.written.split(b"\r\n", 1)[0].decode("latin-1")
        try:
            _version, code, reason = status_line.split(" ", 2)
            status = int(code)
        except ValueError:
            status, reason = 500, "Internal Server Error"
        try:
            util.write_nonblock(client, error_response(status, reason))
        except OSError:
            self.log.debug("Failed to send error message.")


def _post_worker_init(worker: Any) -> None:
    """In the worker, before its first request: open the pool's first connection in the background
    (``shared.db.warm_up``). Not in the master, which imports the function before it forks; and only
    for a function whose code uses the database (it imported ``shared.db``; a hello-world does not)."""
    db = sys.modules.get("shared.db")
    if db is not None:
        db.start_warm_up()


def _pre_fork(_server: Any, _worker: Any) -> None:
    """In the master, just before it forks a worker: freeze what it built (``gc.freeze``) so the
    worker's collections never touch the imported modules, classes and functions it shares with the
    master, then collect again (``main`` stopped the collector while the function was imported). A
    collection writes to the header of every object it examines, and each write copies the object's
    page into the worker: without the freeze, the first collections under load un-share most of what
    the imports built (peak PSS under load, docs/performance.md).

    No ``gc.collect()`` first (the recipe of ``gc.freeze``'s documentation: disable early in the
    parent, freeze before the fork, enable in the child): it examined every object the imports built
    (≈ 21 ms for the jobs function, 37 ms for lis_consumer, 8 ms for hello-world, measured) on every
    cold start's path and found nothing to free after the function's import — a few hundred objects
    (its import's reference cycles) when that import ran without the collector; they stay, frozen."""
    gc.freeze()
    gc.enable()


GUNICORN_OPTIONS: dict[str, object] = {"worker_class": ProblemWorker, "control_socket_disable": True,
                                       "pre_fork": _pre_fork, "post_worker_init": _post_worker_init}


@click.command()
@click.option("--target", envvar="FUNCTION_TARGET", type=click.STRING, required=True)
@click.option("--source", envvar="FUNCTION_SOURCE", type=click.Path(), default=None)
@click.option("--signature-type", envvar="FUNCTION_SIGNATURE_TYPE",
              type=click.Choice(["http", "event", "cloudevent", "typed"]), default="http")
@click.option("--host", envvar="HOST", type=click.STRING, default="0.0.0.0")
@click.option("--port", envvar="PORT", type=click.INT, default=8080)
@click.option("--debug", envvar="DEBUG", is_flag=True)
def main(target: str, source: str | None, signature_type: str, host: str, port: int, debug: bool) -> None:
    if debug:
        run_reloading(create_app(target, source, signature_type), host, port)
        return
    # The function's import (SQLAlchemy, the models: ~100,000 new objects) without the collector: its
    # automatic collections examined the growing heap again and again (≈ 25 ms of the jobs function's
    # import, measured) for objects that live as long as the process. _pre_fork enables it again.
    gc.disable()
    app = create_app(target, source, signature_type)
    create_server(app, False, **GUNICORN_OPTIONS).run(host, port)


class _NoRequestLines(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        # WSGIRequestHandler.log: '<address> - - [<date>] "<method> <path?query> HTTP/1.1" <status> <size>'
        return " - - [" not in record.getMessage()


def run_reloading(app: Any, host: str, port: int) -> None:
    """Flask's development server: reloads on code change; the debugger stays off."""
    configure_logging()
    logging.getLogger("werkzeug").addFilter(_NoRequestLines())
    app.run(host, port, debug=False, use_reloader=True, use_debugger=False, threaded=True)


if __name__ == "__main__":
    main()
