"""shared.sockets on real socket pairs: a bound socket is blocking, its reads and writes give up after
the bound with TimeoutError (through the buffered file pg8000 reads and writes), and data flows as
through ``makefile``."""

from __future__ import annotations

import socket
import time

import pytest

from shared import sockets


@pytest.fixture()
def pair():
    a, b = socket.socketpair()
    yield a, b
    a.close()
    b.close()


def test_a_bound_socket_is_blocking_with_the_bound_in_the_kernel(pair):
    a, _ = pair
    a.settimeout(5)
    sockets.bound(a, 0.25)
    assert a.gettimeout() is None and a.getblocking()
    receive, send = sockets.bounds(a)
    assert receive == send and 0.25 <= receive < 0.26  # the kernel keeps it in its clock's ticks (≤ 10 ms)


def test_a_bound_that_has_run_out_is_the_shortest_not_none(pair):
    a, _ = pair
    for spent in (0, -3):
        sockets.bound(a, spent)
        receive, send = sockets.bounds(a)
        assert receive == send and 0 < receive < 0.011  # one tick of the kernel's clock; 0 would be "for ever"


def test_data_flows_through_the_buffered_file_both_ways(pair):
    a, b = pair
    sockets.bound(a, 1)
    f = sockets.buffered(a)
    b.sendall(b"hello")
    assert f.read(5) == b"hello"
    f.write(b"world")
    f.flush()
    assert b.recv(5) == b"world"


def test_a_silent_peer_is_a_timeout_error_after_the_bound(pair):
    a, _ = pair
    sockets.bound(a, 0.2)
    f = sockets.buffered(a)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        f.read(1)
    assert time.monotonic() - started >= 0.19
    with pytest.raises(OSError, match="timed out object"):  # as SocketIO: a timed-out stream stays failed
        f.read(1)


def test_a_peer_that_reads_nothing_is_a_timeout_error_on_write(pair):
    a, _ = pair
    sockets.bound(a, 0.1)
    f = sockets.buffered(a)
    with pytest.raises(TimeoutError):
        for _ in range(10_000):  # fills both socket buffers, then the bound cuts the send short
            f.write(b"x" * 65536)
            f.flush()


def test_the_socket_closes_with_its_last_file(pair):
    a, _ = pair
    sockets.bound(a, 1)
    f = sockets.buffered(a)
    a.close()
    assert a.fileno() != -1  # still open underneath: the file holds it, as makefile's would
    f.close()
    assert a.fileno() == -1
