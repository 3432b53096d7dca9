"""Bundles (searchset and history) and the URLs in them.

Links and ``fullUrl`` are absolute, on the configured ``PUBLIC_BASE_URL`` + ``/fhir`` — never on
the request's Host or X-Forwarded-* headers, which any client sets (a link built on them would
send the next request, and its API key, wherever the client said). ``next`` repeats the request's
parameters with an opaque ``_cursor``; there is no ``previous`` (pages are keyset pages, followed
forwards).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import urlencode

from flask import Request

from shared.settings import get_settings


def base_url() -> str:
    return f"{get_settings().public_base_url}/fhir"


def page_url(request: Request, path: str, cursor: str | None = None) -> str:
    """``{base}/{path}?{the request's parameters}``, with ``_cursor`` replaced when given."""
    params = [(k, v) for k, vs in request.args.lists() for v in vs if k != "_cursor" or cursor is None]
    if cursor is not None:
        params.append(("_cursor", cursor))
    query = urlencode(params)
    return f"{base_url()}/{path}" + (f"?{query}" if query else "")


def _links(request: Request, path: str, next_cursor: str | None) -> list[dict[str, str]]:
    links = [{"relation": "self", "url": page_url(request, path)}]
    if next_cursor:
        links.append({"relation": "next", "url": page_url(request, path, next_cursor)})
    return links


def searchset(request: Request, path: str, resources: Iterable[dict[str, Any]], total: int | None,
              next_cursor: str | None, included: Iterable[dict[str, Any]] = (),
              notes: Iterable[str] = ()) -> dict[str, Any]:
    """``total`` None (``_total=none``) leaves Bundle.total out. ``included``: ``_include``/``_revinclude``
    resources (mode include; a match is never repeated); ``notes``: warnings (ignored parameters…) in one
    OperationOutcome entry (mode outcome)."""
    base = base_url()
    entries = [{"fullUrl": f"{base}/{r['resourceType']}/{r['id']}", "resource": r, "search": {"mode": "match"}}
               for r in resources]
    seen = {(e["resource"]["resourceType"], e["resource"]["id"]) for e in entries}
    for r in included:
        if (r["resourceType"], r["id"]) not in seen:
            seen.add((r["resourceType"], r["id"]))
            entries.append({"fullUrl": f"{base}/{r['resourceType']}/{r['id']}", "resource": r, "search": {"mode": "include"}})
    notes = list(notes)
    if notes:
        outcome = {"resourceType": "OperationOutcome", "id": "search-notes",
                   "issue": [{"severity": "warning", "code": "informational", "diagnostics": n} for n in notes]}
        entries.append({"resource": outcome, "search": {"mode": "outcome"}})
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset", "total": total,
                              "link": _links(request, path, next_cursor)}
    if total is None:
        del bundle["total"]
    if entries:
        bundle["entry"] = entries
    return bundle


def history(request: Request, path: str, versions: Iterable[tuple[dict[str, Any], str]], total: int,
            next_cursor: str | None) -> dict[str, Any]:
    """``versions``: (resource, changed_at instant), newest first. Version 1 was a create (POST),
    every later version an update (PUT): records are never deleted."""
    base = base_url()
    entries = []
    for resource, changed_at in versions:
        rid, version = resource["id"], resource["meta"]["versionId"]
        created = version == "1"
        entries.append({
            "fullUrl": f"{base}/{resource['resourceType']}/{rid}",
            "resource": resource,
            "request": {"method": "POST" if created else "PUT",
                        "url": resource["resourceType"] if created else f"{resource['resourceType']}/{rid}"},
            "response": {"status": "201 Created" if created else "200 OK", "etag": f'W/"{version}"',
                         "location": f"{resource['resourceType']}/{rid}/_history/{version}",  # its vread
                         "lastModified": changed_at},
        })
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "history", "total": total,
                              "link": _links(request, path, next_cursor)}
    if entries:
        bundle["entry"] = entries
    return bundle
