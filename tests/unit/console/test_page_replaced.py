"""The browser tests' wait for a new page: both of the inspector's spellings of "stale" mean replaced."""

import pytest
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException

from tests.support.browser import page_replaced


class _Element:
    """The old page's <html> as the driver answers for it: attached, or failing with ``error``."""

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error

    def is_enabled(self) -> bool:
        if self.error:
            raise self.error
        return True


def test_an_attached_page_is_not_replaced():
    assert page_replaced(_Element())(None) is False


def test_a_stale_element_means_replaced():
    assert page_replaced(_Element(StaleElementReferenceException("stale element reference")))(None) is True


def test_the_inspectors_node_error_means_replaced():
    error = WebDriverException('unknown error: unhandled inspector error: {"code":-32000,'
                               '"message":"Node with given id does not belong to the document"}')
    assert page_replaced(_Element(error))(None) is True


def test_any_other_driver_error_escapes():
    with pytest.raises(WebDriverException, match="chrome not reachable"):
        page_replaced(_Element(WebDriverException("chrome not reachable")))(None)
