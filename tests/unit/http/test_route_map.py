"""The route table's own URL map (``shared.http.routing.url_map``) is built once per process, however
many request threads ask for it first: a new api's refused PATCHes, each auditing its failure, used to
build it at once, and one of them failed with SystemError inside werkzeug's rule compilation."""

from __future__ import annotations

import threading

import pytest
from werkzeug.routing import Map

from shared.api.index import ROUTE_MODULES
from shared.http import routing

THREADS = 8


@pytest.fixture()
def fresh_map(monkeypatch):
    routing.use_index(ROUTE_MODULES)  # what the api's module does; the map is dropped, as in a new process
    monkeypatch.setattr(routing, "_map", None)
    monkeypatch.setattr(routing, "_adapter", None)


def test_threads_asking_at_once_get_one_map_built_once(fresh_map, monkeypatch):
    built = []
    real_map = Map

    def counting_map(*args, **kwargs):
        built.append(threading.current_thread().name)
        return real_map(*args, **kwargs)

    monkeypatch.setattr(routing, "Map", counting_map)
    barrier = threading.Barrier(THREADS)
    maps: list = [None] * THREADS

    def ask(i):
        barrier.wait()
        maps[i] = routing.url_map()

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(built) == 1
    assert all(m is maps[0] for m in maps) and routing._map is maps[0]
    assert routing.match("PATCH", "/patients/0c6f3c1e-4a7e-4f6b-9d55-0d0bd5f1e0a1")[0] == \
        "PATCH /patients/<uuid:patient_id>"
