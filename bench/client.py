"""A minimal HTTP client for probes and seeding (http.client: no pooling surprises, no heavy imports)."""

from __future__ import annotations

import http.client
import json
from typing import Any


def request(port: int, method: str, path: str, *, body: Any = None, headers: dict[str, str] | None = None,
            timeout: float = 5.0, conn: http.client.HTTPConnection | None = None) -> tuple[int, bytes]:
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    payload = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
    hdrs = dict(headers or {})
    if payload is not None and "Content-Type" not in hdrs:
        hdrs["Content-Type"] = "application/json"
    try:
        conn.request(method, path, body=payload, headers=hdrs)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        if own:
            conn.close()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
