"""An order's lookup names its namespaces in a fixed number of parameters (shared.lis.orders)."""

import pytest

from shared.lis.orders import _namespace_params


def test_the_set_is_repeated_to_fill_the_parameters():
    assert _namespace_params("ns", {"LIS", "API"}, 3) == {"ns0": "API", "ns1": "LIS", "ns2": "API"}


def test_more_namespaces_than_parameters_are_refused():
    with pytest.raises(ValueError, match="3 namespaces for 2 parameters"):
        _namespace_params("ns", {"A", "B", "C"}, 2)


def test_no_namespace_is_refused():
    with pytest.raises(ValueError, match="0 namespaces"):
        _namespace_params("ns", set(), 2)
