import re

import pytest

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    match = CSRF.search(html)
    assert match, "the page has no form with a CSRF token"
    return match.group(1)


class Console:
    """A browser's view of /console through functions-framework's test client (cookies kept).
    Requests go over https, as in production: the session cookie is Secure."""

    BASE = "https://api.test"

    def __init__(self, app) -> None:  # noqa: ANN001
        self.client = app.test_client()

    def get(self, path: str, **kwargs):  # noqa: ANN201
        return self.client.get(path, base_url=self.BASE, **kwargs)

    def post(self, path: str, data: dict | None = None, **kwargs):  # noqa: ANN201
        return self.client.post(path, base_url=self.BASE, data=data or {}, **kwargs)

    def post_form(self, page_path: str, action: str, extra: dict | None = None):  # noqa: ANN201
        """Submit a form of a page the way a browser does: with the token the page carries."""
        page = self.get(page_path)
        assert page.status_code == 200, page.text
        return self.post(action, {"csrf_token": csrf_of(page.text), **(extra or {})})

    def sign_in(self, token: str, next_path: str = "") -> None:
        form = self.get("/console/sign-in")
        response = self.post("/console/sign-in", {"csrf_token": csrf_of(form.text), "api_key": token, "next": next_path})
        assert response.status_code == 303, response.text


@pytest.fixture()
def console(api_app) -> Console:  # noqa: ANN001
    return Console(api_app)
