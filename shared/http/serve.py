"""The command a function image runs: ``python -m shared.http.serve``.

The same as the ``functions-framework`` command outside debug mode (the app from
``FUNCTION_TARGET``/``FUNCTION_SOURCE``/``FUNCTION_SIGNATURE_TYPE``, gunicorn on ``HOST``:``PORT``
with ``WORKERS`` × ``THREADS``), plus the gunicorn settings a container needs, which that command
has no way to pass:

- ``control_socket_disable``: gunicorn (≥ 25.1) otherwise starts a control server on a Unix socket
  under ``$HOME/.gunicorn``; the root filesystem is read-only, so it logged an error at every start,
  and nobody manages a pod's gunicorn through a socket inside it.
"""

from __future__ import annotations

import os

GUNICORN_OPTIONS: dict[str, object] = {"control_socket_disable": True}


def main() -> None:
    from functions_framework import create_app  # noqa: PLC0415
    from functions_framework._http import create_server  # noqa: PLC0415

    app = create_app()  # reads FUNCTION_TARGET, FUNCTION_SOURCE and FUNCTION_SIGNATURE_TYPE itself
    # HOST and PORT are functions-framework's contract (Knative injects PORT), read as its command does.
    create_server(app, False, **GUNICORN_OPTIONS).run(os.environ.get("HOST", "0.0.0.0"), int(os.environ.get("PORT", "8080")))


if __name__ == "__main__":
    main()
