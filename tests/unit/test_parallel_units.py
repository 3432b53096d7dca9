"""How `make test` splits the suite among pytest-xdist workers (tests/conftest.py)."""

from __future__ import annotations

import json
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


def test_the_longest_units_are_handed_out_first(monkeypatch, tmp_path) -> None:  # noqa: ANN001
    import tests.conftest as conftest  # noqa: PLC0415

    timings = tmp_path / "durations.json"
    timings.write_text(json.dumps({"tests/fault/test_database_outage.py::test_b": 90.0,
                                   "tests/unit/test_f1.py::test_1": 40.0}))  # a fast suite's test that got slow
    monkeypatch.setattr(conftest, "LOCAL_DURATIONS", tmp_path / "missing.json")
    monkeypatch.setattr(conftest, "SEED_DURATIONS", timings)
    fast = [_Item(f"tests/unit/test_f{i}.py::test_{i}") for i in range(6)]
    slow = [_Item("tests/fault/test_database_outage.py::test_a"), _Item("tests/fault/test_database_outage.py::test_b")]
    grouped = [_Item(f"tests/e2e/lis/test_samples_e2e.py::test_{i}") for i in range(3)]  # one unit, never timed
    items = [*slow, *grouped, *fast]
    pytest_collection_modifyitems(None, items)  # type: ignore[arg-type]
    assert sorted(i.nodeid for i in items) == sorted(i.nodeid for i in [*slow, *grouped, *fast]), "nothing lost or doubled"
    assert [i.nodeid for i in items[:2]] == ["tests/fault/test_database_outage.py::test_b", "tests/unit/test_f1.py::test_1"]
    assert [i.nodeid.split("::")[0] for i in items[2:5]] == ["tests/e2e/lis/test_samples_e2e.py"] * 3, "3 untimed e2e tests"
    assert items[5].nodeid == "tests/fault/test_database_outage.py::test_a"
    assert all("/unit/" in i.nodeid for i in items[6:]), "the run ends on the small units"


def test_a_closed_port_refuses_connections_and_nobody_can_take_it_while_held() -> None:
    """What a parallel run relies on for "a subscriber that is down": not a merely free port, which the
    other worker's next process may bind (and then take the deliveries meant to fail)."""
    import socket  # noqa: PLC0415

    import pytest  # noqa: PLC0415

    from tests.support.processes import closed_port  # noqa: PLC0415

    with closed_port() as port:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        for reuse in (False, True):  # gunicorn binds with SO_REUSEADDR
            with socket.socket() as other:
                other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, int(reuse))
                with pytest.raises(OSError, match="in use"):
                    other.bind(("127.0.0.1", port))
