"""`make dev`: the whole system on one machine.

First checks that every port it will listen on is free (one line and exit 1 when one is not, before
anything is created). Then starts (or attaches to) the embedded PostgreSQL unless DATABASE_URL is
set, migrates, prints a fresh admin API key, and runs:
- each function as its own process on 127.0.0.1 (api DEV_PORT_BASE, default 8080; lis_consumer +1,
  notify +2, jobs +3), reloading on code change (``shared.serve --debug``: Flask's reloader, never
  Werkzeug's debugger) or, with ``--no-reload``, gunicorn as in the container;
- the dev router on DEV_PORT_BASE + 10 (``shared.devtools.devrouter``): every function's K_SINK, delivering
  broker events along the Triggers in ``knative/`` and firing its PingSources on their schedules;
- the real Pub/Sub emulator when it is installed (DEV_PORT_BASE + 5): topic ``lis-inbound``
  pushing to lis_consumer and the dead-letter topic pushing to jobs ``/dead-letter``. Without it,
  ``patient-mgt lis send`` posts push bodies straight to lis_consumer;
- with the emulator, the MLLP adapter (``patient-mgt mllp``) on 127.0.0.1:2575 (``--mllp-port``)
  publishing to ``lis-inbound``.
Every port can be moved on its own (``patient-mgt dev --help``).
Where everything listens is written to DATA_DIR/dev/stack.json (read by ``patient-mgt lis send``).
Ctrl-C stops every process it started, the embedded PostgreSQL included when this run started it;
the data in DATA_DIR stays for the next run. ``stop_everything`` (`make dev-stop`) ends what a
killed run or a CLI command left running.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from shared.settings import PROJECT_ROOT, get_settings

# Offset of each process's port from DEV_PORT_BASE (default 8080: api 8080 … router 8090).
OFFSETS = {"api": 0, "lis_consumer": 1, "notify": 2, "jobs": 3, "pubsub-emulator": 5, "router": 10}
FUNCTIONS = {name: 8080 + OFFSETS[name] for name in ("api", "lis_consumer", "notify", "jobs")}
# Knative Service name of each function (knative/app/services.yaml), as Triggers reference them.
SERVICE_NAMES = {"api": "api", "lis_consumer": "lis-consumer", "notify": "notify", "jobs": "jobs"}
ROUTER_PORT = 8080 + OFFSETS["router"]
EMULATOR_PORT = 8080 + OFFSETS["pubsub-emulator"]
MLLP_PORT = 2575  # the MLLP port by convention, not moved by DEV_PORT_BASE


class PortsInUse(RuntimeError):
    """Some port `make dev` needs is taken; ``str()`` is the one line to show."""

    def __init__(self, taken: list[tuple[str, int]]) -> None:
        where = ", ".join(f"127.0.0.1:{port} ({name})" for name, port in taken)
        super().__init__(f"cannot start: {where} {'is' if len(taken) == 1 else 'are'} in use. Move every port with "
                         "DEV_PORT_BASE=<port> (api there, the others after it) or one with --api-port, "
                         "--router-port … (patient-mgt dev --help)")
        self.taken = taken


def dev_ports(base: int, **overrides: int | None) -> dict[str, int]:
    """Every port of the stack from a base and per-process overrides (``api=9000``, ``router=9100`` …)."""
    ports = {name: base + offset for name, offset in OFFSETS.items()} | {"mllp": MLLP_PORT}
    ports.update({name.replace("_emulator", "-emulator"): port for name, port in overrides.items() if port})
    return ports


def _say(text: str) -> None:
    print(f"[dev] {text}", flush=True)


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(avoid: Collection[int] = ()) -> int:
    """A port nothing listens on now (the system's choice), none of ``avoid`` (ports the stack has
    chosen but its processes have not bound yet: the system may hand one of them out again)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port: int = s.getsockname()[1]
        if port not in avoid:
            return port


def listens(proc: subprocess.Popen[bytes], port: int) -> bool | None:
    """Whether ``proc`` or a process it started listens on 127.0.0.1:``port``; None when this cannot
    be told (psutil, which the project's venv has, missing)."""
    try:
        import psutil  # noqa: PLC0415
    except ImportError:
        return None
    try:
        root = psutil.Process(proc.pid)
        for process in [root, *root.children(recursive=True)]:
            for conn in process.net_connections(kind="tcp"):
                if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
                    return True
    except psutil.Error:
        return False
    return False


def wait_for_port(port: int, proc: subprocess.Popen[bytes], name: str, timeout: float = 60.0) -> None:
    """Until ``proc`` listens on ``port``. Something answering there is not enough: when another
    process holds the port, ``proc`` fails to bind it (or already has), and every request meant for
    it would reach the other one — PortsInUse at once instead."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode} while starting")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                pass
        except OSError:
            time.sleep(0.1)
            continue
        if listens(proc, port) is False:
            raise PortsInUse([(name, port)])
        return
    raise RuntimeError(f"{name} did not listen on 127.0.0.1:{port} within {timeout:.0f} s")


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    port: int | None = None

    def stop(self) -> None:
        if self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)  # its own process group: the reloader's child too
        except ProcessLookupError:
            return
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)


@dataclass
class StackConfig:
    ports: dict[str, int] = field(default_factory=lambda: dict(FUNCTIONS))
    router_port: int = ROUTER_PORT
    emulator_port: int | None = EMULATOR_PORT  # None: a free port (tests)
    use_emulator: bool = True
    mllp_port: int | None = None  # the MLLP adapter's port (needs the emulator); None: no adapter
    reload: bool = True
    pingsources: bool = True
    backoff_scale: float = 1.0
    manifests: Path = PROJECT_ROOT / "knative"
    log_dir: Path | None = None  # None: every process logs to this terminal, prefixed with its name
    env: dict[str, str] = field(default_factory=dict)
    state_path: Path | None = None  # None: DATA_DIR/dev/stack.json


class DevStack:
    """The processes of `make dev`; ``start`` brings them up in dependency order, ``stop`` ends them all."""

    def __init__(self, config: StackConfig, database_url: str) -> None:
        self.config = config
        self.database_url = database_url
        self.children: list[Child] = []
        self.emulator_host: str | None = None
        self.mllp_address: str | None = None
        # A fresh emulator project per run: the emulator keeps nothing and numbers messages from 1
        # again, so a topic path reused across runs would repeat message ids the database has seen.
        self.project = f"{get_settings().google_cloud_project}-{time.strftime('%m%d%H%M%S')}"
        self.state_path = config.state_path or state_file()

    def url(self, function: str) -> str:
        return f"http://127.0.0.1:{self.config.ports[function]}"

    @property
    def router_url(self) -> str:
        return f"http://127.0.0.1:{self.config.router_port}"

    def _spawn(self, name: str, cmd: list[str], env: dict[str, str], port: int | None) -> Child:
        if self.config.log_dir is not None:
            self.config.log_dir.mkdir(parents=True, exist_ok=True)
            with (self.config.log_dir / f"{name}.log").open("ab") as out:
                proc = subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        else:
            proc = subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    start_new_session=True)
            threading.Thread(target=_prefix_lines, args=(name, proc.stdout), daemon=True).start()
        child = Child(name, proc, port)
        self.children.append(child)
        return child

    def wanted_ports(self) -> list[tuple[str, int]]:
        from shared.devtools.devrouter import emulator  # noqa: PLC0415

        wanted = [*self.config.ports.items(), ("router", self.config.router_port)]
        if self.config.use_emulator and self.config.emulator_port and emulator.emulator_command("127.0.0.1", 0):
            wanted.append(("pubsub-emulator", self.config.emulator_port))
            if self.config.mllp_port:
                wanted.append(("mllp", self.config.mllp_port))
        return wanted

    def check_ports(self) -> None:
        """Raise PortsInUse naming every port that is taken (before anything is created)."""
        taken = [(name, port) for name, port in self.wanted_ports() if not port_free(port)]
        if taken:
            raise PortsInUse(taken)

    def start(self) -> None:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        from shared.devtools.devrouter import emulator  # noqa: PLC0415

        cfg = self.config
        self.check_ports()  # again: something may have taken one while the database started
        base_env = {**os.environ, "DATABASE_URL": self.database_url, "PYTHONUNBUFFERED": "1", "NO_GCE_CHECK": "true",
                    "K_SINK": self.router_url + "/", "GOOGLE_CLOUD_PROJECT": self.project, **cfg.env}
        base_env.setdefault("NOTIFY_PROVIDER", "console")
        base_env.setdefault("PUBLIC_BASE_URL", self.url("api"))  # FHIR links point at this api
        base_env.setdefault("CONSOLE_COOKIE_SECURE", "false")  # the operator console over plain-HTTP loopback
        base_env.pop("EVENT_SINK", None)

        if cfg.use_emulator and emulator.emulator_command("127.0.0.1", 0) is not None:
            port = cfg.emulator_port or free_port(avoid={port for _name, port in self.wanted_ports()})
            log_path = (cfg.log_dir or get_settings().data_dir / "dev") / "pubsub-emulator.log"
            proc = emulator.start("127.0.0.1", port, log_path)
            self.children.append(Child("pubsub-emulator", proc, port))
            self.emulator_host = f"127.0.0.1:{port}"
            base_env["PUBSUB_EMULATOR_HOST"] = self.emulator_host
        elif cfg.use_emulator:
            _say("Pub/Sub emulator not installed (gcloud components install pubsub-emulator): "
                 "`patient-mgt lis send` will post push bodies straight to lis_consumer")

        services = {SERVICE_NAMES[f]: self.url(f) for f in cfg.ports}
        router_cmd = [sys.executable, "-m", "shared.devtools.devrouter", "--host", "127.0.0.1", "--port", str(cfg.router_port),
                      "--manifests", str(cfg.manifests), "--backoff-scale", str(cfg.backoff_scale),
                      *[arg for name, url in services.items() for arg in ("--service", f"{name}={url}")]]
        if not cfg.pingsources:
            router_cmd.append("--no-pingsources")
        router = self._spawn("router", router_cmd, base_env, cfg.router_port)

        functions = [self._spawn(name, function_command(name, port, reload=cfg.reload), {**base_env, "FUNCTION_TARGET": name}, port)
                     for name, port in cfg.ports.items()]
        for child in [router, *functions]:
            assert child.port is not None
            wait_for_port(child.port, child.proc, child.name)

        if self.emulator_host:
            emulator.Emulator(self.emulator_host, self.project).wire_lis(self.url("lis_consumer"), self.url("jobs"))
            if cfg.mllp_port is not None:
                emulator.Emulator(self.emulator_host, self.project).wire_lis_outbound()
                self._start_mllp(cfg.mllp_port, base_env)
        self._write_state()

    def _start_mllp(self, port: int, base_env: dict[str, str]) -> None:
        """`patient-mgt mllp` on 127.0.0.1, publishing to the emulator's LIS topic."""
        from shared.devtools.devrouter import emulator  # noqa: PLC0415

        if not port_free(port):
            raise RuntimeError(f"127.0.0.1:{port} (mllp) is in use: is another `make dev` running?")
        env = {"LIS_OUTBOUND_DEAD_LETTER_SUBSCRIPTION": emulator.LIS_OUTBOUND_DEAD_LETTER_SUBSCRIPTION, **base_env,
               "MLLP_HOST": "127.0.0.1", "MLLP_PORT": str(port), "MLLP_TOPIC": emulator.LIS_TOPIC}
        child = self._spawn("mllp", [sys.executable, "-m", "shared.cli", "mllp"], env, port)
        wait_for_port(port, child.proc, child.name)
        self.mllp_address = f"127.0.0.1:{port}"

    def _write_state(self) -> None:
        from shared.devtools.devrouter import emulator  # noqa: PLC0415

        state = {name: self.url(name) for name in self.config.ports} | {
            "router": self.router_url, "pubsub_emulator_host": self.emulator_host, "project": self.project,
            "lis_topic": emulator.LIS_TOPIC, "mllp": self.mllp_address, "pid": os.getpid(),
            "processes": {c.name: c.proc.pid for c in self.children}}  # each leads its own process group
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        self.state_path.write_text(json.dumps(state, indent=2))

    def exited(self) -> Child | None:
        return next((c for c in self.children if c.proc.poll() is not None), None)

    # Stopped first: what delivers to the functions (the adapter publishes; the emulator and the router
    # push and retry). A function stopped before them frees a port they would keep pushing to, which
    # another process may bind meanwhile (the tests' parallel workers do) and take those deliveries.
    SENDERS = ("mllp", "pubsub-emulator", "router")

    def stop(self) -> None:
        senders = [c for name in self.SENDERS for c in self.children if c.name == name]
        for child in [*senders, *(c for c in reversed(self.children) if c not in senders)]:
            child.stop()
        self.children.clear()
        try:
            if json.loads(self.state_path.read_text()).get("pid") == os.getpid():
                self.state_path.unlink()
        except (OSError, ValueError):
            pass


def function_command(name: str, port: int, *, reload: bool) -> list[str]:
    """The command serving one function (``shared.serve``, as the container does): with ``--debug`` the
    reloader (never Werkzeug's debugger), else gunicorn as in production."""
    signature = "http" if name == "api" else "cloudevent"
    cmd = [sys.executable, "-m", "shared.serve", "--source", str(PROJECT_ROOT / "functions" / name / "main.py"),
           "--target", name, "--signature-type", signature, "--host", "127.0.0.1", "--port", str(port)]
    return [*cmd, "--debug"] if reload else cmd


def state_file() -> Path:
    return get_settings().data_dir / "dev" / "stack.json"


def read_state() -> dict | None:
    """Where the running `make dev` listens (None when it is not running)."""
    try:
        return json.loads(state_file().read_text())
    except (OSError, ValueError):
        return None


def _prefix_lines(name: str, stream: IO[bytes] | None) -> None:
    if stream is None:
        return
    for raw in iter(stream.readline, b""):
        sys.stdout.write(f"{name:<15} {raw.decode('utf-8', errors='replace')}")
        sys.stdout.flush()


def prepare_database() -> str:
    from shared.db import get_engine, resolve_database_url  # noqa: PLC0415
    from shared.migrate import migrate  # noqa: PLC0415

    url = resolve_database_url()
    os.environ["DATABASE_URL"] = url
    applied = migrate(get_engine())
    _say(f"database ready ({'embedded PostgreSQL under ' + str(get_settings().data_dir) if not get_settings().database_url else 'DATABASE_URL'}); "
         f"{len(applied)} migration(s) applied")
    return url


def create_dev_admin_key() -> str:
    from shared.auth import create_api_key  # noqa: PLC0415
    from shared.db import unit_of_work  # noqa: PLC0415

    with unit_of_work() as uow:
        _key, token = create_api_key(uow, f"dev-admin-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}", ["admin"])
    return token


def run(reload: bool = True, extra_env: dict[str, str] | None = None, *, emulator: bool = True, pingsources: bool = True,
        ports: dict[str, int] | None = None, config: StackConfig | None = None) -> int:
    """``ports``: from ``dev_ports`` (default: DEV_PORT_BASE's layout), or a whole ``config`` (tests).
    Every port is checked first: a taken one is PortsInUse before the database is started or migrated
    and before a key is made."""
    from shared.devtools.embedded_pg import embedded_pid, stop_embedded  # noqa: PLC0415

    settings = get_settings()
    if config is None:
        ports = ports or dev_ports(settings.dev_port_base)
        config = StackConfig(ports={f: ports[f] for f in FUNCTIONS}, router_port=ports["router"],
                             emulator_port=ports["pubsub-emulator"], mllp_port=ports["mllp"], reload=reload,
                             use_emulator=emulator, pingsources=pingsources, env=dict(extra_env or {}))
    stack = DevStack(config, database_url="")
    stack.check_ports()
    embedded = not settings.database_url
    already_running = embedded and embedded_pid(settings.data_dir) is not None
    stack.database_url = prepare_database()
    token = create_dev_admin_key()
    stopping = False

    def stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # SIGHUP: the terminal was closed
        signal.signal(signum, stop)
    try:
        stack.start()
        for name in stack.config.ports:
            _say(f"{name:<15} {stack.url(name)}")
        _say(f"{'router':<15} {stack.router_url}  (K_SINK of every function; GET /_dev/deliveries)")
        if stack.emulator_host:
            _say(f"{'pubsub':<15} {stack.emulator_host}  (PUBSUB_EMULATOR_HOST; topic lis-inbound -> lis_consumer)")
        if stack.mllp_address:
            _say(f"{'mllp':<15} {stack.mllp_address}  (MLLP -> topic lis-inbound; patient-mgt lis send --mllp FILE)")
        _say("send a lab message: .venv/bin/patient-mgt lis send tests/fixtures/hl7/<file>.hl7   (docs/dev.md)")
        _say(f"operator console: {stack.url('api')}/console/  (sign in with the key below)")
        _say("admin API key (use as: Authorization: Bearer <key>):")
        print(token, flush=True)
        while not stopping:
            child = stack.exited()
            if child is not None:
                _say(f"{child.name} exited with {child.proc.returncode}; stopping")
                break
            time.sleep(0.5)
    finally:
        stack.stop()
        from shared.db import dispose_engine  # noqa: PLC0415

        dispose_engine()
        if embedded and not already_running:
            stop_embedded(settings.data_dir)
            _say("stopped (the embedded PostgreSQL too; its data stays under " + str(settings.data_dir / "pg") + ")")
        elif embedded:
            _say("stopped; the embedded PostgreSQL stays up: it was running before this `make dev` started "
                 "(another command started it). `make dev-stop` stops it")
        else:
            _say("stopped")
    return 0


def stop_everything() -> int:
    """`make dev-stop`: a running `make dev`, the processes a killed one left, and the embedded PostgreSQL."""
    from shared.devtools.embedded_pg import stop_embedded  # noqa: PLC0415
    from shared.pids import alive  # noqa: PLC0415

    state = read_state() or {}
    pid = state.get("pid")
    if isinstance(pid, int) and pid != os.getpid() and alive(pid):
        os.kill(pid, signal.SIGTERM)  # it stops its own processes (and the database it started)
        deadline = time.monotonic() + 30
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        _say(f"stopped `make dev` (pid {pid})")
    for name, child in (state.get("processes") or {}).items():
        if alive(child):
            try:
                os.killpg(child, signal.SIGTERM)
                _say(f"stopped {name} (pid {child}), left behind by a `make dev` that did not stop cleanly")
            except (ProcessLookupError, PermissionError):
                pass
    state_file().unlink(missing_ok=True)
    if stop_embedded(get_settings().data_dir):
        _say(f"stopped the embedded PostgreSQL under {get_settings().data_dir / 'pg'}")
    else:
        _say("the embedded PostgreSQL is not running")
    return 0
