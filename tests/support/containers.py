"""Run a built function image with podman the way Kubernetes and Knative run its container.

``run_args`` translates one container of a manifest (knative/app/services.yaml, or the migration
Job) into ``podman run`` arguments: the securityContext (uid/gid, read-only root, dropped
capabilities, no privilege escalation; seccomp RuntimeDefault is podman's default profile), the
volumes (an in-memory emptyDir is a tmpfs of its sizeLimit; a ConfigMap or projected volume is an
empty read-only directory, as for an optional ConfigMap that does not exist), resource limits,
``envFrom`` + ``env`` (ConfigMap and Secret references resolved from what the caller passes), and
what Knative injects (``PORT``, ``K_SERVICE``, ``K_CONFIGURATION``, ``K_REVISION``; ``K_SINK`` from
the SinkBinding). ``command``/``args`` replace the image's entrypoint/command as in Kubernetes.

Differences that cannot be avoided here: the network is the host's loopback (``--network host``;
no other network exists on these machines), so ``PORT`` is a free port instead of the containerPort
8080; no queue-proxy sits in front of the container; and what only a cluster has (notify's AWS
identity: a projected token and ~/.aws/config) is replaced by what the caller passes in
``PodContext.extra_env`` (moto's endpoint and test credentials).
"""

from __future__ import annotations

import json
import socket
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import requests
import yaml

from tools.images import podman

ROOT = Path(__file__).resolve().parents[2]
KNATIVE = ROOT / "knative"
# Knative sets a revision's pod terminationGracePeriodSeconds to its timeoutSeconds.
DEFAULT_TIMEOUT_SECONDS = 300
# Files the runtime (podman here, the kubelet in a cluster) puts into every container.
RUNTIME_FILES = ("/etc/hosts", "/etc/hostname", "/etc/resolv.conf", "/run/.containerenv")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def services() -> dict[str, dict[str, Any]]:
    """The Knative Services of the base rendering, by name."""
    return {d["metadata"]["name"]: d for d in _docs(KNATIVE / "app" / "services.yaml") if d["kind"] == "Service"}


def migration_job() -> dict[str, Any]:
    (job,) = [d for d in _docs(KNATIVE / "platform" / "migrate-job.yaml") if d["kind"] == "Job"]
    return job


def configmaps() -> dict[str, dict[str, str]]:
    return {d["metadata"]["name"]: {k: str(v) for k, v in d.get("data", {}).items()}
            for d in _docs(KNATIVE / "platform" / "config.yaml") if d["kind"] == "ConfigMap"}


def sink_bound(service: dict[str, Any]) -> bool:
    """Whether the SinkBinding in knative/app/eventing.yaml selects this Service (it injects K_SINK)."""
    labels = service["metadata"].get("labels", {})
    for binding in _docs(KNATIVE / "app" / "eventing.yaml"):
        if binding["kind"] == "SinkBinding":
            wanted = binding["spec"]["subject"]["selector"]["matchLabels"]
            if all(labels.get(k) == v for k, v in wanted.items()):
                return True
    return False


def _quantity_mib(value: str) -> int:
    units = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024}
    for suffix, factor in units.items():
        if value.endswith(suffix):
            return int(float(value[: -len(suffix)]) * factor)
    return int(value) // (1024 * 1024)


def _cpus(value: str) -> str:
    return str(int(value[:-1]) / 1000) if value.endswith("m") else str(float(value))


@dataclass
class PodContext:
    """What the cluster provides to a pod: its ConfigMaps and Secrets, and the sink."""

    configmaps: Mapping[str, Mapping[str, str]]
    secrets: Mapping[str, Mapping[str, str]]
    k_sink: str | None = None
    scratch: Path = field(default_factory=lambda: Path("/nonexistent"))  # host dir for empty volume mounts
    # Per Service, what the cluster adds beyond the manifests here (notify's AWS identity stand-in).
    extra_env: Mapping[str, Mapping[str, str]] = field(default_factory=dict)


def environment(container: dict[str, Any], ctx: PodContext) -> dict[str, str]:
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        ref = source["configMapRef"]
        env.update(ctx.configmaps[ref["name"]])
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = str(item["value"])
            continue
        ref = item["valueFrom"]
        if "secretKeyRef" in ref:
            env[item["name"]] = ctx.secrets[ref["secretKeyRef"]["name"]][ref["secretKeyRef"]["key"]]
        else:
            env[item["name"]] = ctx.configmaps[ref["configMapKeyRef"]["name"]][ref["configMapKeyRef"]["key"]]
    return env


def mount_points(pod_spec: dict[str, Any]) -> tuple[str, ...]:
    """Where the pod mounts volumes, as created in the image (Debian's /var/run is a link to /run)."""
    (container,) = pod_spec["containers"]
    paths = [m["mountPath"] for m in container.get("volumeMounts", [])]
    return tuple(paths + ["/run/" + p.removeprefix("/var/run/") for p in paths if p.startswith("/var/run/")])


def run_args(pod_spec: dict[str, Any], ctx: PodContext, *, read_only: bool = True,
             injected: Mapping[str, str] | None = None) -> list[str]:
    """``podman run`` options and image (and command) for the pod's only container."""
    (container,) = pod_spec["containers"]
    security = container.get("securityContext", {})
    args = ["--network", "host", "--user", f"{security['runAsUser']}:{security['runAsGroup']}"]
    if security.get("readOnlyRootFilesystem") and read_only:
        args += ["--read-only", "--read-only-tmpfs=false"]  # podman would add tmpfs on /tmp, /var/tmp, /run
    if "ALL" in security.get("capabilities", {}).get("drop", []):
        args += ["--cap-drop", "ALL"]
    if security.get("allowPrivilegeEscalation") is False:
        args += ["--security-opt", "no-new-privileges"]
    assert security.get("seccompProfile", {}).get("type", "RuntimeDefault") == "RuntimeDefault"

    resources = container.get("resources", {})
    limits = resources.get("limits", {})
    if "cpu" in resources.get("requests", {}):  # as the kubelet sets cpu.shares
        args += ["--cpu-shares", str(max(2, int(float(_cpus(resources["requests"]["cpu"])) * 1024)))]
    if "memory" in limits:
        args += ["--memory", f"{_quantity_mib(limits['memory'])}m"]
    if "cpu" in limits:
        args += ["--cpus", _cpus(limits["cpu"])]

    volumes = {v["name"]: v for v in pod_spec.get("volumes", [])}
    for mount in container.get("volumeMounts", []):
        volume = volumes[mount["name"]]
        if "emptyDir" in volume:
            assert volume["emptyDir"].get("medium") == "Memory", "only in-memory emptyDirs are translated"
            size = _quantity_mib(volume["emptyDir"].get("sizeLimit", "64Mi"))
            args += ["--mount", f"type=tmpfs,destination={mount['mountPath']},tmpfs-size={size}m,tmpfs-mode=1777"]
        else:  # configMap / projected: an empty, read-only directory
            empty = ctx.scratch / f"volume-{mount['name']}"
            empty.mkdir(parents=True, exist_ok=True)
            args += ["--mount", f"type=bind,source={empty},destination={mount['mountPath']},ro=true"]

    env = {**environment(container, ctx), **(injected or {})}
    for name, value in env.items():
        args += ["--env", f"{name}={value}"]
    if "command" in container:
        args += ["--entrypoint", json.dumps(container["command"])]
    return [*args, container["image"], *container.get("args", [])]


@dataclass
class Container:
    """One started container (``podman run -d``), addressed on 127.0.0.1:port."""

    name: str
    port: int | None
    grace_seconds: int
    started_at: float
    mount_points: tuple[str, ...] = ()
    ready_seconds: float | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def running(self) -> bool:
        return self.state()["Running"]

    def state(self) -> dict[str, Any]:
        out = podman("inspect", "--format", "{{json .State}}", self.name, capture=True).stdout
        return json.loads(out)

    def logs(self) -> list[str]:
        out = podman("logs", self.name, capture=True)
        return [line for line in (out.stdout + out.stderr).splitlines() if line.strip()]

    def terminate(self) -> int:
        """SIGTERM, then what the kubelet does after the grace period (SIGKILL). Returns the exit code."""
        podman("stop", "--time", str(self.grace_seconds), self.name, capture=True)
        return int(self.state()["ExitCode"])

    def written(self) -> list[str]:
        """What the process wrote to the container's own filesystem layer ("added /path", ...).

        podman's diff of the layer, less the runtime's own work: the mount points it creates, the
        files it mounts over (/etc/hosts and the like) and the directories holding them. What is
        written inside a mount (the /tmp tmpfs) is not part of the layer at all.
        """
        out = podman("diff", "--format", "json", self.name, capture=True).stdout
        changes: dict[str, list[str] | None] = json.loads(out) if out.strip() else {}
        runtime = {*RUNTIME_FILES, *self.mount_points}
        holding = {str(parent) for path in runtime for parent in PurePosixPath(path).parents}
        return sorted(f"{kind} {path}" for kind, paths in changes.items() for path in paths or []
                      if path not in runtime and not (kind == "changed" and path in holding))

    def remove(self) -> None:
        podman("rm", "--force", "--time", "0", self.name, check=False, capture=True)


def start_service(service: dict[str, Any], ctx: PodContext, *, read_only: bool = True) -> Container:
    """Start a Knative Service's container as its first revision would run it (detached)."""
    name = service["metadata"]["name"]
    pod_spec = service["spec"]["template"]["spec"]
    port = free_port()
    injected = {"PORT": str(port), "K_SERVICE": name, "K_CONFIGURATION": name, "K_REVISION": f"{name}-00001"}
    if ctx.k_sink and sink_bound(service):
        injected["K_SINK"] = ctx.k_sink
    injected |= ctx.extra_env.get(name, {})
    container_name = f"pm-image-{name}-{uuid.uuid4().hex[:8]}"
    args = run_args(pod_spec, ctx, read_only=read_only, injected=injected)
    started = time.monotonic()
    podman("run", "--detach", "--name", container_name, *args, capture=True)
    grace = int(pod_spec.get("timeoutSeconds", DEFAULT_TIMEOUT_SECONDS))
    return Container(name=container_name, port=port, grace_seconds=grace, started_at=started,
                     mount_points=mount_points(pod_spec))


def run_job(job: dict[str, Any], ctx: PodContext, *, read_only: bool = True, timeout: float = 300) -> tuple[Container, int]:
    """Run a Job's container until it exits; returns it (not yet removed) and its exit code."""
    name = f"pm-image-{job['metadata']['name']}-{uuid.uuid4().hex[:8]}"
    args = run_args(job["spec"]["template"]["spec"], ctx, read_only=read_only)
    started = time.monotonic()
    done = podman("run", "--name", name, *args, check=False, capture=True, timeout=timeout)
    container = Container(name=name, port=None, grace_seconds=0, started_at=started,
                          mount_points=mount_points(job["spec"]["template"]["spec"]))
    return container, done.returncode


def wait_ready(container: Container, probe: dict[str, Any] | None, timeout: float = 120) -> requests.Response | None:
    """Poll the container's readiness probe as the kubelet would, until it passes.

    An ``httpGet`` probe passes on a status from 200 to 399; without a probe Knative checks that the
    port accepts a TCP connection. Returns the passing HTTP response (None for a TCP probe).
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not container.running():
            raise AssertionError(f"{container.name} exited while starting:\n" + "\n".join(container.logs()))
        try:
            if probe and "httpGet" in probe:
                resp = requests.get(container.url + probe["httpGet"].get("path", "/"), timeout=probe.get("timeoutSeconds", 1))
                if 200 <= resp.status_code < 400:
                    container.ready_seconds = time.monotonic() - container.started_at
                    return resp
            else:
                with socket.create_connection(("127.0.0.1", container.port), timeout=1):
                    container.ready_seconds = time.monotonic() - container.started_at
                    return None
        except (OSError, requests.RequestException):
            pass
        time.sleep(0.1)
    raise AssertionError(f"{container.name} never passed its readiness probe:\n" + "\n".join(container.logs()))
