"""Headless Chromium from Debian's packages, driven by selenium through Debian's chromedriver.

No browser or driver is downloaded: selenium is given both paths (and SE_OFFLINE keeps its driver
manager from looking one up). ``make test`` installs the packages when they are missing.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from typing import Any


def chromium() -> Any:
    from selenium import webdriver  # noqa: PLC0415
    from selenium.webdriver.chrome.service import Service  # noqa: PLC0415

    binary, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not binary or not driver:
        raise RuntimeError("chromium and chromedriver are needed (Debian: apt-get install chromium chromium-driver; "
                           "`make test` installs them when run as root)")
    os.environ.setdefault("SE_OFFLINE", "true")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1280,900", "--force-device-scale-factor=1", "--lang=en-US",
                     "--disable-extensions", "--no-first-run", "--hide-scrollbars"):
        options.add_argument(argument)
    return webdriver.Chrome(options=options, service=Service(executable_path=driver))


# Chromium's inspector answers this, instead of "stale element reference", when asked about a node of a
# document that a navigation has just replaced (SeleniumHQ/selenium#15401): it means the same thing.
_REPLACED_DOCUMENT = "Node with given id does not belong to the document"


def page_replaced(old_page: Any) -> Callable[[Any], bool]:
    """A wait condition: the element ``old_page`` (the old page's <html>) belongs to no current document.

    selenium's ``staleness_of`` lets the inspector's other spelling of "stale" escape as an error, which
    failed the console's browser test about once in six runs.
    """
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException  # noqa: PLC0415

    def replaced(_driver: Any) -> bool:
        try:
            old_page.is_enabled()
        except StaleElementReferenceException:
            return True
        except WebDriverException as error:
            if _REPLACED_DOCUMENT in str(error):
                return True
            raise
        return False

    return replaced


def full_page_screenshot(browser: Any, path: os.PathLike[str] | str, width: int = 1280) -> None:
    """The whole page, not just the viewport: the window is made as tall as the document first."""
    measure = "return Math.max(document.body.scrollHeight, document.documentElement.scrollHeight)"
    for _ in range(2):  # the window's chrome takes some of its height: measure again once resized
        inner = browser.execute_script("return window.innerHeight")
        outer = browser.get_window_size()["height"]
        browser.set_window_size(width, min(int(browser.execute_script(measure)) + outer - int(inner), 4000))
    browser.save_screenshot(str(path))
    browser.set_window_size(width, 900)
