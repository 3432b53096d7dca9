"""How `make test` splits the suite among pytest-xdist workers (tests/conftest.py)."""

from __future__ import annotations

from dataclasses import dataclass

from tests.conftest import _shares_module_fixtures, _unit, pytest_collection_modifyitems


def test_modules_sharing_a_module_fixture_are_one_unit_and_others_split_per_test() -> None:
    assert _shares_module_fixtures("tests/e2e/lis/test_samples_e2e.py")  # lis_process in tests/e2e/lis/conftest.py
    assert _shares_module_fixtures("tests/http/notify/test_notify_function.py")  # moto in its conftest
    assert not _shares_module_fixtures("tests/fault/test_database_outage.py")  # function fixtures (+ session)
    assert _unit("tests/e2e/lis/test_samples_e2e.py::test_x[1]") == "tests/e2e/lis/test_samples_e2e.py"
    assert _unit("tests/fault/test_database_outage.py::test_y") == "tests/fault/test_database_outage.py::test_y"


@dataclass
class _Item:
    nodeid: str


def test_slow_units_are_spread_and_the_run_ends_on_fast_tests() -> None:
    fast = [_Item(f"tests/unit/test_f{i}.py::test_{i}") for i in range(50)]
    slow = [_Item(f"tests/fault/test_database_outage.py::test_s{i}") for i in range(5)]
    items = [*slow, *fast]  # collection order: the slow suites first (tests/e2e, tests/fault sort first)
    pytest_collection_modifyitems(None, items)  # type: ignore[arg-type]
    assert sorted(i.nodeid for i in items) == sorted(i.nodeid for i in [*slow, *fast]), "nothing lost or doubled"
    positions = [n for n, item in enumerate(items) if "/fault/" in item.nodeid]
    assert positions[0] == 0 and positions[1] > 1, "a slow unit, then a slice of fast tests, then the next"
    gaps = {b - a for a, b in zip(positions, positions[1:], strict=False)}
    assert len(gaps) == 1, "evenly spread"
    assert all("/unit/" in item.nodeid for item in items[-10:]), "the last units are fast"
