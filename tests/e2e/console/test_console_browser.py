"""The operator console in a real browser (Debian's headless Chromium via selenium) against the real
api and lis_consumer functions on 127.0.0.1: sign in, overview numbers equal the API's, a quarantined
message opened, refused without its CSRF token, replayed after its fix, and a key without the scope
refused. Screenshots of the overview and of a message page are saved (docs/operations.md shows them;
``UPDATE_SCREENSHOTS=1`` writes them to docs/images)."""

from __future__ import annotations

import os
import shutil
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa
from selenium.webdriver.common.by import By
from selenium.webdriver.support.wait import WebDriverWait

from shared.db import unit_of_work
from shared.models import LisMessage
from shared.models.base import utcnow
from tests.support.browser import chromium, full_page_screenshot, page_replaced
from tests.support.lis_delivery import push
from tests.support.lis_ingest import Feed, hl7

pytestmark = pytest.mark.e2e
DOCS_IMAGES = Path(__file__).resolve().parents[3] / "docs" / "images"


@pytest.fixture()
def browser():
    driver = chromium()
    yield driver
    driver.quit()


def _deliver(lis, raw: bytes) -> None:
    headers, body = push(raw)
    response = requests.post(lis.url, headers=headers, data=body, timeout=30)
    assert response.status_code == 200, response.text


def _backfill_day(facility: str) -> None:
    """Processed messages spread over the last 24 hours, so the chart has a day to show (rows as the
    consumer stores them; a purged payload, so no content)."""
    now = utcnow()
    rows = []
    for hour in range(24):
        for n in range(3 + (hour * 7) % 11):
            received = now - timedelta(hours=hour, minutes=(n * 13) % 60)
            lag = 2.0 + (hour % 6) * 9 + n * 0.7
            rows.append({"id": uuid.uuid4(), "received_at": received, "processed_at": received, "transport": "pubsub",
                         "ce_source": "/tests/console-backfill", "ce_id": str(uuid.uuid4()), "part": 0, "parts": 1,
                         "content_format": "hl7v2", "raw": None, "raw_sha256": "0" * 64, "raw_size": 420,
                         "sending_facility": facility, "message_type": "ORU^R01", "control_id": uuid.uuid4().hex[:12],
                         "message_time": received - timedelta(seconds=lag), "status": "processed", "warnings": [],
                         "lag_seconds": lag, "delivery_count": 1, "attempts": 1})
    with unit_of_work() as uow:
        uow.session.execute(sa.insert(LisMessage), rows)


def _click_and_wait(browser, element) -> None:
    """Click something that loads a new page, and wait until the old page is gone."""
    page = browser.find_element(By.TAG_NAME, "html")
    element.click()
    WebDriverWait(browser, 20).until(page_replaced(page))


def _text(browser, css: str) -> str:
    return browser.find_element(By.CSS_SELECTOR, css).text


def _sign_in(browser, base: str, token: str) -> None:
    browser.get(base + "/console/")
    assert browser.current_url.startswith(base + "/console/sign-in")
    browser.find_element(By.ID, "api_key").send_keys(token)
    _click_and_wait(browser, browser.find_element(By.CSS_SELECTOR, "form button[type=submit]"))
    assert browser.current_url == base + "/console/"


def test_console_in_a_browser(start_fn, make_token, browser, tmp_path):
    api = start_fn("api", env={"CONSOLE_COOKIE_SECURE": "false"}, ready_path="/healthz")
    lis = start_fn("lis_consumer")
    f = Feed()
    _backfill_day(f"DAY{f.tag}")
    sent = [(utcnow() - timedelta(seconds=s)).strftime("%Y%m%d%H%M%S") for s in (95, 70, 40)]
    _deliver(lis, hl7(f.msh("ADT^A04", sent[0]), f.pid("A", name="RIVERA^ANA^MARIA")))
    _deliver(lis, hl7(f.msh("ADT^A04", sent[1]), f.pid("B", name="RIVERA^ANA")))
    # One result naming both records of the same person: quarantined until they are merged.
    _deliver(lis, hl7(f.msh("ORU^R01", sent[2]), f.pid("A", name="RIVERA^ANA^MARIA", extra=f"~{f.id('B')}^^^{f.facility}^MR"),
                      f"ORC|RE|{f.id('ORD1')}|F{f.tag}||CM", f"OBR|1|{f.id('ORD1')}|F{f.tag}|2345-7^Glucose^LN|||{sent[0]}",
                      f"OBX|1|NM|2345-7^Glucose^LN||5.4|mmol/L|3.9-6.1|N|||F|||{sent[1]}",
                      "NTE|1||Fasting sample"))
    operator = make_token("lis:read", "lis:admin", "patients:read", "admin", name=f"on-call-{f.tag}")
    bearer = {"Authorization": f"Bearer {operator}"}

    # Sign in, and the overview's numbers are the API's.
    _sign_in(browser, api.url, operator)
    status = requests.get(api.url + "/lis/status", headers=bearer, timeout=10).json()
    for s, total in status["counts"]["total"].items():
        row = f'#lis-counts tr[data-status="{s}"]'
        assert int(_text(browser, row + " td.day").replace(",", "")) == status["counts"]["last_24h"][s]
        assert int(_text(browser, row + " td.total").replace(",", "")) == total
    assert len(browser.find_elements(By.CSS_SELECTOR, "svg rect.bar")) == 24
    overview_png = tmp_path / "console-overview.png"
    full_page_screenshot(browser, overview_png)

    # Open the quarantined message from the filtered list.
    browser.get(f"{api.url}/console/lis/messages?facility={f.facility}&status=quarantined")
    rows = browser.find_elements(By.CSS_SELECTOR, "#messages tbody tr[data-id]")
    assert len(rows) == 1 and "identifier_conflict" in rows[0].text
    message_id = rows[0].get_attribute("data-id")
    _click_and_wait(browser, rows[0].find_element(By.CSS_SELECTOR, "a"))
    assert "identifier_conflict" in _text(browser, "#status")
    _click_and_wait(browser, browser.find_element(By.ID, "show-raw"))
    lines = browser.find_elements(By.CSS_SELECTOR, "#raw li")
    assert [line.text.split("|")[0] for line in lines] == ["MSH", "PID", "ORC", "OBR", "OBX", "NTE"]
    message_png = tmp_path / "console-message.png"
    full_page_screenshot(browser, message_png)

    # The Replay form without its CSRF token is refused, and nothing changes.
    browser.execute_script("document.querySelector('form.action input[name=csrf_token]').remove()")
    _click_and_wait(browser, browser.find_element(By.ID, "replay"))
    assert "403" in browser.title and "CSRF" in _text(browser, "main")
    api_view = requests.get(f"{api.url}/lis/messages/{message_id}", headers=bearer, timeout=10).json()
    assert (api_view["status"], api_view["attempts"]) == ("quarantined", 1)

    # Fix what it needed (the two records are one person: merge them), then Replay.
    patients = {k: requests.get(api.url + "/patients", params={"identifier": f.id(k)}, headers=bearer, timeout=10)
                .json()["items"][0]["id"] for k in ("A", "B")}
    merged = requests.post(f"{api.url}/patients/{patients['B']}/merge", json={"target_id": patients["A"]},
                           headers=bearer, timeout=10)
    assert merged.status_code == 200, merged.text
    browser.get(f"{api.url}/console/lis/messages/{message_id}")
    _click_and_wait(browser, browser.find_element(By.ID, "replay"))
    assert "now processed" in _text(browser, "#outcome")
    assert _text(browser, "#status").startswith("processed")
    history = _text(browser, "#history")
    assert "received → quarantined" in history and "replayed from quarantined → processed" in history
    assert requests.get(f"{api.url}/lis/messages/{message_id}", headers=bearer, timeout=10).json()["status"] == "processed"
    _click_and_wait(browser, browser.find_element(By.ID, "patient"))
    assert "mmol/L" in _text(browser, "main")

    # A key without lis:read: signed in, but refused the LIS pages.
    _click_and_wait(browser, browser.find_element(By.CSS_SELECTOR, "form.who button"))
    _sign_in(browser, api.url, make_token("patients:read"))
    assert "LIS messages" not in _text(browser, "header")
    browser.get(f"{api.url}/console/lis/messages/{message_id}")
    assert "403" in browser.title and "lis:read" in _text(browser, "main")

    # Nothing of the patient reached the api's log (request lines name the page template, never a value).
    logs = api.logs()
    assert "RIVERA" not in logs and f.id("A") not in logs and "Glucose" not in logs and "/console/lis/messages" in logs

    for png in (overview_png, message_png):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
        if os.environ.get("UPDATE_SCREENSHOTS"):
            DOCS_IMAGES.mkdir(exist_ok=True)
            shutil.copyfile(png, DOCS_IMAGES / png.name)
