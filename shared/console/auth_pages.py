"""Signing in (an API key pasted once), signing out, and the stylesheet."""

from __future__ import annotations

from importlib import resources

from flask import Response

from shared.auth import authenticate
from shared.console import sessions
from shared.console.web import PREFIX, View, page, redirect, sign_in_location
from shared.errors import Forbidden, Unauthorized

_STYLESHEET: bytes | None = None


@page("GET", "/sign-in", scope=None)
def sign_in_form(view: View) -> Response:
    if view.principal is not None:
        return redirect(sign_in_location(view.request.args.get("next")))
    token = sessions.new_sign_in_token()
    response = view.render("sign_in.html", sign_in_token=token, next=view.request.args.get("next", ""), error=None)
    sessions.set_sign_in_cookie(response, token)
    return response


@page("POST", "/sign-in", scope=None)
def sign_in(view: View) -> Response:
    form = view.request.form
    if not sessions.tokens_match(view.request.cookies.get(sessions.SIGN_IN_COOKIE), form.get("csrf_token")):
        raise Forbidden("The form's CSRF token is missing or wrong: reload the sign-in page and try again")
    key = (form.get("api_key") or "").strip()
    try:
        principal = authenticate(f"Bearer {key}")
    except Unauthorized:
        token = sessions.new_sign_in_token()
        response = view.render("sign_in.html", status=401, sign_in_token=token, next=form.get("next", ""),
                               error="That API key is unknown, revoked or malformed.")
        sessions.set_sign_in_cookie(response, token)
        return response
    response = redirect(sign_in_location(form.get("next")))
    sessions.set_session_cookie(response, sessions.start(principal))
    return response


@page("POST", "/sign-out", scope="")
def sign_out(view: View) -> Response:
    assert view.principal is not None
    sessions.end(view.request.cookies[sessions.COOKIE], view.principal)
    response = redirect(f"{PREFIX}/sign-in")
    sessions.clear_session_cookie(response)
    return response


@page("GET", "/static/console.css", scope=None)
def stylesheet(view: View) -> Response:
    global _STYLESHEET
    if _STYLESHEET is None:
        _STYLESHEET = resources.files("shared.console").joinpath("static/console.css").read_bytes()
    return Response(_STYLESHEET, mimetype="text/css")
