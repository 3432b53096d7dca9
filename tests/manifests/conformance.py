"""Check knative/ and skaffold.yaml against the upstream schemas vendored in tests/fixtures/schemas.

    python -m tests.manifests.conformance [--root DIR]      (what `make check-manifests` runs)

Needs only what the lock installs (PyYAML, jsonschema) and what the repository ships:
- every YAML document under knative/ (kustomization.yaml files aside):
  - Knative kinds against the CRD schemas of knative/serving v1.23 and knative/eventing v1.22, with
    objects closed (an unknown or misspelt field is an error, as `kubectl --validate=strict` says:
    the API server would silently prune it);
  - core Kubernetes kinds against the Kubernetes 1.37 strict schemas;
  - the rules only Knative's admission webhooks enforce (reserved env vars and ports, one container
    port, autoscaling annotation keys and values, PingSource data rules, Trigger filter keys,
    delivery settings);
  - references: a Trigger's broker, a Trigger's or a source's sink Service, must be defined here;
  - deprecated or archived API groups (v1beta2 PingSource, knative-gcp);
  - Config Connector kinds (*.cnrm.cloud.google.com) have no schema here: noted, not checked;
- skaffold.yaml against skaffold's v4beta14 JSON schema; every image a manifest names is built by
  a skaffold artifact, and every artifact is used.
Exit 0 when nothing is wrong; 1 with one line per problem; the last line is a summary.
tests/manifests/test_conformance.py runs it inside `make test`.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "tests" / "fixtures" / "schemas"
KUBERNETES_SCHEMAS = SCHEMAS / "kubernetes" / "v1.37.0-local-strict.json"

RESERVED_ENV = {"PORT", "K_SERVICE", "K_CONFIGURATION", "K_REVISION"}
RESERVED_PORTS = {8012, 8013, 8022, 9090, 9091, 8008}
AUTOSCALING_KEYS = {
    "class", "metric", "target", "target-utilization-percentage", "target-burst-capacity", "min-scale", "max-scale",
    "initial-scale", "activation-scale", "scale-down-delay", "scale-to-zero-pod-retention-period", "window",
    "panic-window-percentage", "panic-threshold-percentage", "metric-aggregation-algorithm",
}
LEGACY_AUTOSCALING = {
    "minScale", "maxScale", "initialScale", "scaleDownDelay", "targetUtilizationPercentage", "targetBurstCapacity",
    "panicWindowPercentage", "panicThresholdPercentage", "metricAggregationAlgorithm", "scaleToZeroPodRetentionPeriod",
}
INT_ANNOTATIONS = {"min-scale", "max-scale", "initial-scale", "activation-scale"}
DEPRECATED = {
    ("sources.knative.dev/v1beta2", "PingSource"): "use sources.knative.dev/v1",
    ("sources.knative.dev/v1alpha2", None): "removed; use sources.knative.dev/v1",
    ("eventing.knative.dev/v1beta1", "EventType"): "deprecated; use v1beta3",
}
ARCHIVED_GROUPS = ("events.cloud.google.com", "messaging.cloud.google.com", "internal.events.cloud.google.com")
ISO_DURATION = re.compile(r"^P(?!$)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?$")
ATTR_NAME = re.compile(r"^[a-z][a-z0-9]*$")
DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


@dataclass
class Report:
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    docs: int = 0

    def add(self, where: str, message: str) -> None:
        self.problems.append(f"{where}: {message}")

    def note(self, where: str, message: str) -> None:
        self.notes.append(f"{where}: {message}")

    def summary(self) -> str:
        n = len(self.problems)
        return f"{self.docs} documents checked, {n} problem{'s' if n != 1 else ''}"


# --- schemas ----------------------------------------------------------------------------------


def close_objects(schema: Any) -> Any:
    """Every object schema with properties is closed, unless it preserves unknown fields."""
    if isinstance(schema, dict):
        schema = {k: close_objects(v) for k, v in schema.items()}
        if ("properties" in schema and not schema.get("x-kubernetes-preserve-unknown-fields")
                and "additionalProperties" not in schema):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [close_objects(v) for v in schema]
    return schema


@cache
def knative_schema(api_version: str, kind: str) -> dict[str, Any] | None:
    group, _, version = api_version.rpartition("/")
    path = SCHEMAS / "knative" / f"{group}_{version}_{kind}.json"
    if not path.exists():
        return None
    schema = close_objects(json.loads(path.read_text()))
    props = schema.setdefault("properties", {})
    props.pop("status", None)  # written by controllers, never by manifests
    for name in ("apiVersion", "kind", "metadata"):  # the envelope is Kubernetes'
        props.setdefault(name, {"type": "object"} if name == "metadata" else {"type": "string"})
    return schema


@cache
def _kubernetes_bundle() -> dict[str, Any]:
    return json.loads(KUBERNETES_SCHEMAS.read_text())


def kubernetes_schema(api_version: str, kind: str) -> dict[str, Any] | None:
    bundle = _kubernetes_bundle()
    schema = bundle["kinds"].get(f"{api_version}/{kind}")
    return None if schema is None else {**schema, "$defs": bundle["$defs"]}


@cache
def skaffold_schema() -> dict[str, Any]:
    return json.loads((SCHEMAS / "skaffold" / "v4beta14.json").read_text())


def schema_errors(doc: Any, schema: dict[str, Any], validator: type = jsonschema.Draft7Validator) -> Iterator[str]:
    # An anyOf/oneOf failure (skaffold's schema is made of them) is reported as the branch that came
    # closest: the deepest failing leaf with the shortest complaint, so the line names the misspelt
    # field instead of dumping the whole document.
    lines = set()
    for err in map(_closest, validator(schema).iter_errors(doc)):
        lines.add(("/".join(str(p) for p in err.absolute_path) or "(root)", err.message[:300]))
    for path, message in sorted(lines):
        yield f"{path}: {message}"


def _leaves(err: jsonschema.ValidationError) -> Iterator[jsonschema.ValidationError]:
    if not err.context:
        yield err
    for sub in err.context or []:
        yield from _leaves(sub)


def _closest(err: jsonschema.ValidationError) -> jsonschema.ValidationError:
    return min(_leaves(err), key=lambda e: (-len(e.absolute_path), len(e.message)))


# --- Knative webhook rules ----------------------------------------------------------------------


def check_delivery(where: str, delivery: Any, rep: Report) -> None:
    if not isinstance(delivery, dict):
        return
    if "backoffDelay" in delivery and not ISO_DURATION.match(str(delivery["backoffDelay"])):
        rep.add(where, f"delivery.backoffDelay {delivery['backoffDelay']!r} is not an ISO 8601 duration")
    if "backoffPolicy" in delivery and delivery["backoffPolicy"] not in ("linear", "exponential"):
        rep.add(where, "delivery.backoffPolicy must be linear or exponential")
    if "retry" in delivery and (not isinstance(delivery["retry"], int) or delivery["retry"] < 0):
        rep.add(where, "delivery.retry must be a non-negative integer")


def _check_autoscaling(where: str, annotations: dict[str, Any], rep: Report) -> None:
    for key, value in annotations.items():
        if not key.startswith("autoscaling.knative.dev/"):
            continue
        name = key.split("/", 1)[1]
        if name in LEGACY_AUTOSCALING:
            rep.add(where, f"annotation {key} is a legacy camelCase spelling; use the kebab-case key")
        elif name not in AUTOSCALING_KEYS:
            rep.add(where, f"unknown autoscaling annotation {key}")
        if name in INT_ANNOTATIONS and _non_negative_int(value) is None:
            rep.add(where, f"annotation {key} must be a non-negative integer string, got {value!r}")
        if name == "class" and value not in ("kpa.autoscaling.knative.dev", "hpa.autoscaling.knative.dev"):
            rep.add(where, f"autoscaling class {value!r} is not kpa or hpa")
    low = _non_negative_int(annotations.get("autoscaling.knative.dev/min-scale", 0))
    high = _non_negative_int(annotations.get("autoscaling.knative.dev/max-scale", 0))
    if low is not None and high and low > high:
        rep.add(where, f"min-scale {low} is above max-scale {high}")


def _non_negative_int(value: Any) -> int | None:
    try:
        number = int(str(value))
    except ValueError:
        return None
    return number if number >= 0 else None


def check_service(where: str, doc: dict[str, Any], rep: Report) -> None:
    template = (doc.get("spec") or {}).get("template") or {}
    _check_autoscaling(where, (template.get("metadata") or {}).get("annotations") or {}, rep)
    pod = template.get("spec") or {}
    containers = pod.get("containers") or []
    ports = [p for c in containers for p in (c.get("ports") or [])]
    if len(ports) > 1:
        rep.add(where, "more than one container port is set (Knative allows one)")
    for port in ports:
        if port.get("name", "") not in ("", "h2c", "http1"):
            rep.add(where, f"container port name {port.get('name')!r} must be empty, h2c or http1")
        if port.get("containerPort") in RESERVED_PORTS:
            rep.add(where, f"container port {port.get('containerPort')} is reserved by Knative")
    for container in containers:
        if container.get("name") == "queue-proxy":
            rep.add(where, "container name queue-proxy is reserved")
        for env in container.get("env") or []:
            if env.get("name") in RESERVED_ENV:
                rep.add(where, f"env {env.get('name')} is reserved: Knative sets it")
    timeout = pod.get("timeoutSeconds")
    if timeout is not None and not (0 <= int(timeout) <= 600):
        rep.add(where, "timeoutSeconds must be within 0..600 (max-revision-timeout-seconds)")
    concurrency = pod.get("containerConcurrency")
    if concurrency is not None and not (0 <= int(concurrency) <= 1000):
        rep.add(where, "containerConcurrency must be within 0..1000")


def check_pingsource(where: str, doc: dict[str, Any], rep: Report) -> None:
    spec = doc.get("spec") or {}
    if "data" in spec and "dataBase64" in spec:
        rep.add(where, "data and dataBase64 are mutually exclusive")
    schedule = str(spec.get("schedule", "* * * * *"))
    if schedule.startswith("@every"):
        rep.add(where, "@every schedules are rejected by the webhook")
    elif not schedule.startswith("@") and len(schedule.split()) not in (5, 6):
        rep.add(where, f"schedule {schedule!r} is not a cron expression")
    if str(spec.get("contentType", "")).strip() == "application/json" and "data" in spec:
        try:
            if not isinstance(json.loads(spec["data"]), dict):
                rep.add(where, "application/json data must be a JSON object")
        except (TypeError, ValueError):
            rep.add(where, "application/json data does not parse as JSON")
    if not (spec.get("sink") or {}):
        rep.add(where, "spec.sink is required")


def check_trigger(where: str, doc: dict[str, Any], rep: Report) -> None:
    spec = doc.get("spec") or {}
    if not spec.get("broker"):
        rep.add(where, "spec.broker is required")
    for key in (spec.get("filter") or {}).get("attributes") or {}:
        if not ATTR_NAME.match(key):
            rep.add(where, f"filter attribute {key!r} is not a CloudEvents attribute name")
    subscriber = spec.get("subscriber") or {}
    if not (subscriber.get("ref") or subscriber.get("uri")):
        rep.add(where, "spec.subscriber needs a ref or a uri")
    check_delivery(where, spec.get("delivery"), rep)


def refs_of(doc: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any] | None]]:
    spec = doc.get("spec") or {}
    kind = doc.get("kind")
    if kind == "Trigger":
        yield "subscriber", (spec.get("subscriber") or {}).get("ref")
    if kind in ("PingSource", "SinkBinding", "ApiServerSource", "ContainerSource"):
        yield "sink", (spec.get("sink") or {}).get("ref")
    if kind in ("Trigger", "Broker"):
        yield "deadLetterSink", ((spec.get("delivery") or {}).get("deadLetterSink") or {}).get("ref")


def images_of(doc: dict[str, Any]) -> Iterator[str]:
    spec = doc.get("spec") or {}
    kind, api = doc.get("kind"), str(doc.get("apiVersion", ""))
    pod: dict[str, Any] | None = None
    if (kind == "Service" and api.startswith("serving.knative.dev")) or kind in (
            "Job", "Deployment", "StatefulSet", "DaemonSet", "ContainerSource"):
        pod = (spec.get("template") or {}).get("spec")
    elif kind == "CronJob":
        pod = (((spec.get("jobTemplate") or {}).get("spec") or {}).get("template") or {}).get("spec")
    for container in ((pod or {}).get("containers") or []) + ((pod or {}).get("initContainers") or []):
        if container.get("image"):
            yield container["image"]


# --- documents --------------------------------------------------------------------------------


def _check_one(where: str, doc: dict[str, Any], rep: Report) -> None:
    api, kind = doc["apiVersion"], doc["kind"]
    group = api.split("/")[0] if "/" in api else ""
    if group in ARCHIVED_GROUPS:
        rep.add(where, f"{api} belongs to google/knative-gcp, which is archived")
        return
    for (dep_api, dep_kind), why in DEPRECATED.items():
        if api == dep_api and dep_kind in (None, kind):
            rep.add(where, f"{api} {kind} is deprecated: {why}")
    if group.endswith("knative.dev"):
        schema = knative_schema(api, kind)
        if schema is None:
            rep.add(where, f"no schema for {api} {kind} in the vendored Knative CRDs")
            return
        for error in schema_errors(doc, schema):
            rep.add(where, error)
        if kind == "Service" and group == "serving.knative.dev":
            check_service(where, doc, rep)
        elif kind == "PingSource":
            check_pingsource(where, doc, rep)
        elif kind == "Trigger":
            check_trigger(where, doc, rep)
        elif kind == "Broker":
            check_delivery(where, (doc.get("spec") or {}).get("delivery"), rep)
        return
    schema = kubernetes_schema(api, kind)
    if schema is not None:
        for error in schema_errors(doc, schema, jsonschema.Draft202012Validator):
            rep.add(where, error)
    elif "." in group and not group.endswith(".k8s.io"):
        rep.note(where, f"not checked: no schema here for {api} {kind}")
    else:
        rep.add(where, f"no Kubernetes schema for {api} {kind} (vendor it: tests/fixtures/schemas/vendor.py)")


def check_docs(docs: list[tuple[str, dict[str, Any]]], rep: Report) -> None:
    defined = {(d.get("kind"), (d.get("metadata") or {}).get("name")) for _, d in docs}
    for where, doc in docs:
        rep.docs += 1
        api, kind = doc.get("apiVersion"), doc.get("kind")
        name = (doc.get("metadata") or {}).get("name")
        if not api or not kind:
            rep.add(where, "document has no apiVersion or kind")
            continue
        where = f"{where} {kind}/{name}"
        if not name:
            rep.add(where, "metadata.name is required")
        elif not DNS1123.match(str(name)) or len(str(name)) > 63:
            rep.add(where, f"metadata.name {name!r} is not a DNS-1123 label")
        _check_one(where, doc, rep)
        namespace = (doc.get("metadata") or {}).get("namespace")
        for role, ref in refs_of(doc):
            if not ref or (ref.get("namespace") and ref.get("namespace") != namespace):
                continue
            if (ref.get("kind"), ref.get("name")) not in defined:
                rep.add(where, f"{role} refers to {ref.get('kind')}/{ref.get('name')}, which no manifest defines")
        broker = (doc.get("spec") or {}).get("broker") if kind == "Trigger" else None
        if broker and ("Broker", broker) not in defined:
            rep.add(where, f"broker {broker!r} is not defined by any manifest")


def _base_name(image: str) -> str:
    return re.split(r"[:@]", image.split("/")[-1])[0]


def check_skaffold(root: Path, images: set[str], rep: Report) -> None:
    path = root / "skaffold.yaml"
    if not path.exists():
        rep.add("skaffold.yaml", "missing")
        return
    try:
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    except yaml.YAMLError as err:
        rep.add("skaffold.yaml", f"does not parse: {err}")
        return
    artifacts: set[str] = set()
    for i, doc in enumerate(docs):
        rep.docs += 1
        where = f"skaffold.yaml[{i}]"
        if not re.match(r"^skaffold/v4beta\d+$", str(doc.get("apiVersion", ""))):
            rep.add(where, f"apiVersion {doc.get('apiVersion')!r}: use skaffold/v4beta14 (v4beta*)")
        for error in schema_errors(doc, skaffold_schema()):
            rep.add(where, error)
        for build in [doc.get("build") or {}, *((p.get("build") or {}) for p in doc.get("profiles") or [])]:
            artifacts.update(a.get("image") for a in build.get("artifacts") or [] if a.get("image"))
    built = {_base_name(a) for a in artifacts}
    for image in sorted(images):
        if image not in artifacts and _base_name(image) not in built:
            rep.add("skaffold.yaml", f"image {image!r} used by a manifest is built by no artifact")
    used = {_base_name(i) for i in images}
    for artifact in sorted(artifacts):
        if _base_name(artifact) not in used:
            rep.add("skaffold.yaml", f"artifact {artifact!r} is used by no manifest")


def check(root: Path = ROOT) -> Report:
    rep = Report()
    knative = root / "knative"
    if not knative.is_dir():
        rep.add("knative/", "missing")
        return rep
    docs: list[tuple[str, dict[str, Any]]] = []
    for path in sorted(p for p in knative.rglob("*") if p.suffix in (".yaml", ".yml") and p.name != "kustomization.yaml"):
        try:
            docs += [(f"{path.relative_to(root)}[{i}]", d) for i, d in enumerate(yaml.safe_load_all(path.read_text())) if d]
        except yaml.YAMLError as err:
            rep.add(str(path.relative_to(root)), f"does not parse: {err}")
    check_docs(docs, rep)
    check_skaffold(root, {image for _, d in docs for image in images_of(d)}, rep)
    return rep


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="check-manifests", description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="the project root (default: this repository)")
    args = parser.parse_args(argv)
    rep = check(args.root)
    for line in rep.notes:
        print("note:", line)
    for line in rep.problems:
        print(line)
    print(rep.summary())
    return 1 if rep.problems else 0


if __name__ == "__main__":
    sys.exit(main())
