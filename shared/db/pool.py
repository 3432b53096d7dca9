"""The process's one pool of pg8000 connections, without SQLAlchemy.

The hot paths (a patient read, an API-key lookup, a registration, the immediate publish, the
readiness probe) borrow a connection here and speak to pg8000 directly (``shared.db.wire``); the
SQLAlchemy engine, loaded only by the paths that use the ORM, borrows its connections from this same
pool (``shared.db.orm``), so one limit (``DB_POOL_SIZE``) holds for both.

What the SQLAlchemy ``QueuePool`` gave before is kept: connections opened on demand (a process starts
with the one ``shared.db.warm_up`` opens), last in first out (the connection used last has its
statements prepared), at most ``Settings.pool_size()`` open, a checkout that waits
``DB_POOL_TIMEOUT_SECONDS`` and then raises :class:`PoolExhausted` (a 503), recycling after 30 minutes,
a 5 s connect timeout (kept as the read timeout but where no statement timeout is set), TCP_NODELAY, ``SET TIME
ZONE 'UTC'`` and ``statement_timeout`` per connection.
A connection comes back rolled back when a transaction was left open. One that saw an error
PostgreSQL did not send is closed instead of returned (``discard``: pg8000 may have failed with the
server's answers unread, ``shared.db.wire``), and a real disconnect closes every idle connection
opened before it (``invalidate``: a generation counter), as the server restarted under them.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from shared import pg8000_dates
from shared import sockets
from shared.log import get_logger
from shared.settings import get_settings

log = get_logger(__name__)

RECYCLE_SECONDS = 1800
CONNECT_TIMEOUT_SECONDS = 5


class PoolExhausted(TimeoutError):
    """Every pooled connection stayed in use for the whole checkout timeout (a 503, like any transient fault)."""


def resolve_database_url() -> str:
    """DATABASE_URL, or the embedded PostgreSQL under DATA_DIR when it is unset."""
    settings = get_settings()
    if settings.database_url:
        return settings.database_url
    from shared.devtools.embedded_pg import start_embedded  # noqa: PLC0415

    return start_embedded(settings.data_dir)


def connect_args(url: str) -> dict[str, Any]:
    """pg8000's ``connect`` arguments for a ``postgresql+pg8000://`` URL (what SQLAlchemy's dialect
    passes): user, password, host, port, database, and the query's options as given (``unix_sock``)."""
    parts = urlsplit(url)
    args: dict[str, Any] = {"user": unquote(parts.username or "")}
    if parts.password is not None:
        args["password"] = unquote(parts.password)
    if parts.hostname:
        args["host"] = parts.hostname
    if parts.port:
        args["port"] = parts.port
    database = unquote(parts.path.lstrip("/"))
    if database:
        args["database"] = database
    args.update(parse_qsl(parts.query))
    return args


def open_connection(url: str, statement_timeout_ms: int) -> Any:
    """A new pg8000 connection configured as every pooled one is: TCP_NODELAY, UTC, statement_timeout,
    and the client's read timeout that goes with it (`_read_timeout`)."""
    con = _connect(connect_args(url))
    try:
        _no_delay(con)
        _read_timeout(con, statement_timeout_ms)
        con.execute_simple("SET TIME ZONE 'UTC'")
        if statement_timeout_ms:
            con.execute_simple(f"SET statement_timeout = {int(statement_timeout_ms)}")
        pg8000_dates.adapt(con)
    except BaseException:
        _close_quietly(con)
        raise
    return con


# Servers (host, port, unix socket) that answered pg8000's SSL request with "no": later connections
# to them go in plain text without asking again.
_REFUSES_TLS: set[tuple[Any, Any, Any]] = set()
_TLS_CONTEXT: list[Any] = []  # the process's one context, made by the first connection that asks for TLS
_SERVER_REFUSES_SSL = "Server refuses SSL"  # pg8000's InterfaceError when it asked for TLS and the server said no


def _tls_context() -> Any:
    """What pg8000 uses when it is given no ``ssl_context`` (TLS when the server offers it, the
    server's certificate not verified), made once per process and without loading the system's CA
    certificates: pg8000 built one per connection with ``ssl.create_default_context()``, whose
    ``load_default_certs`` took ≈ 20 ms of every connect (two of them on a CloudEvent function's
    first event) for certificates that ``CERT_NONE`` never reads."""
    if not _TLS_CONTEXT:
        import ssl  # noqa: PLC0415

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        _TLS_CONTEXT.append(context)
    return _TLS_CONTEXT[0]


def _connect(args: dict[str, Any]) -> Any:
    """``pg8000.connect`` as with no ``ssl_context`` — TLS if the server offers it, plain text if it
    does not — with the process's one context (``_tls_context``). Given a context, pg8000 refuses a
    server that declines TLS, so that answer is remembered and the connection opened again in plain
    text, once per server and process. A ``ssl_context`` in the URL's query is pg8000's to apply."""
    import pg8000  # noqa: PLC0415

    if "ssl_context" in args:
        return pg8000.connect(**args, timeout=CONNECT_TIMEOUT_SECONDS)
    server = (args.get("host"), args.get("port"), args.get("unix_sock"))
    if server not in _REFUSES_TLS:
        try:
            return pg8000.connect(**args, ssl_context=_tls_context(), timeout=CONNECT_TIMEOUT_SECONDS)
        except pg8000.InterfaceError as exc:
            if str(exc) != _SERVER_REFUSES_SSL:
                raise
            _REFUSES_TLS.add(server)
    return pg8000.connect(**args, ssl_context=False, timeout=CONNECT_TIMEOUT_SECONDS)


def _no_delay(con: Any) -> None:
    """Send each statement's last segment at once (TCP_NODELAY). pg8000 writes a message larger than its
    8 KB buffer in pieces; with Nagle's algorithm the last piece waits for the server's delayed ACK
    (~40 ms), which a LIS message's final statement (its results as one JSON parameter) hit about one
    time in five. Unix sockets have no such delay."""
    sock = getattr(con, "_usock", None)
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


# A dead peer under a connection with no read timeout is found by TCP keepalive (pg8000 turns it on):
# probes after 30 s of silence, every 10 s, given up after 3 unanswered (instead of the kernel's 2 hours).
KEEPALIVE = {"TCP_KEEPIDLE": 30, "TCP_KEEPINTVL": 10, "TCP_KEEPCNT": 3}


def _read_timeout(con: Any, statement_timeout_ms: int) -> None:
    """pg8000 keeps its connect timeout (``CONNECT_TIMEOUT_SECONDS``) on the socket for every later read:
    an answer that takes longer fails client-side as a lost connection. For the services that is the
    design — a hung server (its processes stopped, its connections open) gives 503s within seconds
    (tests/fault/test_database_outage.py) — and their ``statement_timeout`` is the server's bound on
    the rest. Without a statement timeout (``DB_STATEMENT_TIMEOUT_MS=0``: the migrate Job, whose DDL on
    a large table "may legitimately run longer") the 5 s cut defeated the setting: a
    ``CREATE INDEX CONCURRENTLY`` over a hospital's patients failed as a disconnect. There the socket
    waits as long as the statement runs, and keepalive (`KEEPALIVE`) finds a dead peer.

    On a plain connection the read timeout is the kernel's (``shared.sockets``): a Python one polls the
    socket before each write and read, four system calls per round trip, each a hand-over of the GIL,
    where two do. A TLS connection keeps Python's: CPython's TLS read retries a blocking socket's
    timed-out read, so there the kernel's bound would never end a wait (tests/fault/test_database_tls.py)."""
    sock = getattr(con, "_usock", None)
    if sock is None:
        return
    if statement_timeout_ms:
        if not sockets.can_bound(sock):
            return
        sockets.bound(sock, CONNECT_TIMEOUT_SECONDS)
        con._sock = sockets.buffered(sock)  # pg8000's file over the socket, raising TimeoutError as before
        return
    sock.settimeout(None)
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        for option, value in KEEPALIVE.items():
            if hasattr(socket, option):
                sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, option), value)


def _close_quietly(con: Any) -> None:
    try:
        con.close()
    except Exception:  # noqa: BLE001, S110 — a broken connection is being dropped; nothing to tell
        pass


class DriverPool:
    """Up to ``size`` pg8000 connections, lent one at a time (``connection()``, ``acquire``/``release``)."""

    def __init__(self, opener: Callable[[], Any], *, size: int, timeout: float,
                 recycle: float = RECYCLE_SECONDS) -> None:
        self._opener = opener
        self.size = size
        self.timeout = timeout
        self.recycle = recycle
        self._cond = threading.Condition(threading.Lock())
        self._waiting = 0  # checkouts waiting for a connection (none: a return notifies nobody)
        self._idle: list[Any] = []  # a stack: the last returned is lent first
        self._open = 0  # lent + idle + being opened
        self._generation = 0
        self.opened = 0  # connections this pool has opened (tests, warm-up)
        self.last_active = time.monotonic()  # a checkout or a return (``shared.db.warm``)
        self.lent = 0

    # -- lending ----------------------------------------------------------------------------------

    def acquire(self, timeout: float | None = None) -> Any:
        now = time.monotonic()
        deadline = now + (self.timeout if timeout is None else timeout)
        stale: list[Any] = []
        try:
            with self._cond:
                while True:
                    while self._idle:
                        con = self._idle.pop()
                        if con._pool_generation != self._generation or now - con._pool_opened_at > self.recycle:
                            self._open -= 1
                            stale.append(con)
                            continue
                        self.lent += 1
                        self.last_active = now
                        return con
                    if self._open < self.size:
                        self._open += 1
                        generation = self._generation
                        break
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise PoolExhausted(f"no pooled connection free within {self.timeout:g} s")
                    self._waiting += 1
                    try:
                        self._cond.wait(left)
                    finally:
                        self._waiting -= 1
                    now = time.monotonic()
        finally:
            for con in stale:
                _close_quietly(con)
        try:
            con = self._opener()
        except BaseException:
            with self._cond:
                self._open -= 1
                self._cond.notify()
            raise
        con._pool_generation = generation
        con._pool_opened_at = time.monotonic()
        con._pool = self
        con._pool_out_of_step = False
        con._pool_disconnected = False
        with self._cond:
            self.opened += 1
            self.lent += 1
            self.last_active = time.monotonic()
        return con

    def release(self, con: Any, *, discard: bool = False) -> None:
        """Take ``con`` back: rolled back if a transaction is open; closed instead when ``discard``, when
        it fell out of step with the server (``shared.db.wire``), or when the pool was invalidated or
        disposed since it was opened."""
        if con._pool_disconnected:
            con._pool_disconnected = False
            self.invalidate()
        if not discard and not con._pool_out_of_step and con._usock is not None and con._in_transaction:
            try:
                con.rollback()
            except Exception as exc:  # noqa: BLE001 — a connection that cannot roll back is not reused
                discard = True
                if is_disconnect(exc):
                    self.invalidate()
        discard = discard or con._pool_out_of_step or con._usock is None
        with self._cond:
            self.lent -= 1
            self.last_active = time.monotonic()
            if discard or con._pool_generation != self._generation:
                self._open -= 1
            else:
                con.autocommit = False
                self._idle.append(con)
                con = None
            if self._waiting:
                self._cond.notify()
        if con is not None:
            _close_quietly(con)

    def connection(self, *, autocommit: bool = False) -> _Lending:
        """A connection for the block; with ``autocommit`` pg8000 sends no BEGIN of its own (each
        statement commits on its own, and one carrying its own ``BEGIN`` opens a transaction that
        leaving without ``COMMIT`` hands to the rollback on return)."""
        return _Lending(self, autocommit)

    # -- invalidation -----------------------------------------------------------------------------

    def invalidate(self) -> None:
        """The server went away (or restarted): close the idle connections, and those lent now when
        they come back; every later checkout gets a new one."""
        self.dispose()
        log.warning("database pool invalidated after a disconnect")

    def dispose(self) -> None:
        """Close the idle connections; those lent now are closed when they come back."""
        with self._cond:
            self._generation += 1
            idle, self._idle = self._idle, []
            self._open -= len(idle)
            self._cond.notify_all()
        for con in idle:
            _close_quietly(con)

    def idle(self) -> int:
        with self._cond:
            return len(self._idle)


class _Lending:
    """``DriverPool.connection``'s block, as a class rather than a ``contextmanager`` generator: every
    request on the pool enters one."""

    __slots__ = ("pool", "autocommit", "con")

    def __init__(self, pool: DriverPool, autocommit: bool) -> None:
        self.pool = pool
        self.autocommit = autocommit

    def __enter__(self) -> Any:
        con = self.con = self.pool.acquire()
        con.autocommit = self.autocommit
        return con

    def __exit__(self, *exc_info: object) -> None:
        self.pool.release(self.con)


def is_disconnect(exc: BaseException) -> bool:
    """pg8000 lost the connection (as SQLAlchemy's pg8000 dialect decides: "network error", or the
    connection closed), or the socket failed under it."""
    from pg8000.exceptions import InterfaceError  # noqa: PLC0415

    if isinstance(exc, InterfaceError):
        text = str(exc)
        return "network error" in text or "connection is closed" in text
    return isinstance(exc, (OSError, EOFError))


_lock = threading.Lock()
_pool: DriverPool | None = None


def get_pool() -> DriverPool:
    """The process's pool (created on first use; connections open as checkouts need them)."""
    global _pool
    pool = _pool
    if pool is None:
        with _lock:
            if _pool is None:
                settings = get_settings()
                url = resolve_database_url()
                timeout_ms = settings.db_statement_timeout_ms
                _pool = DriverPool(lambda: open_connection(url, timeout_ms), size=settings.pool_size(),
                                   timeout=settings.db_pool_timeout_seconds)
            pool = _pool
    return pool


def current_pool() -> DriverPool | None:
    return _pool


def _forget_in_child() -> None:
    """After a fork, the child must not use (nor close: that would end the parent's sessions) the
    parent's connections: it starts with a pool of its own on first use."""
    global _pool, _lock
    _pool, _lock = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_in_child)


def dispose_pool() -> None:
    """Forget the process's pool, closing its idle connections (tests that switch databases; after fork)."""
    global _pool
    with _lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.dispose()
