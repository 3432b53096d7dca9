"""Read the eventing objects the router needs from the Knative manifests under ``knative/``.

Brokers, Triggers (``eventing.knative.dev/v1``) and PingSources (``sources.knative.dev/v1``), as
declared for production. Overlays (``knative/overlays``) and kustomizations are not applied: the
base manifests are the contract. Only the fields the dev router acts on are read.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from shared.settings import PROJECT_ROOT

KNATIVE_DIR = PROJECT_ROOT / "knative"
_DURATION = re.compile(
    r"^P(?:(?P<d>\d+(?:\.\d+)?)D)?(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<m>\d+(?:\.\d+)?)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$"
)


class ManifestError(ValueError):
    pass


def parse_duration(value: str) -> float:
    """ISO-8601 duration (``PT1S``, ``PT0.5S``, ``PT2M``, ``P1DT1H``) in seconds."""
    m = _DURATION.match(value.strip())
    if not m or value.strip() in ("P", "PT"):
        raise ManifestError(f"not an ISO-8601 duration: {value!r}")
    parts = {k: float(v) for k, v in m.groupdict().items() if v}
    return parts.get("d", 0) * 86400 + parts.get("h", 0) * 3600 + parts.get("m", 0) * 60 + parts.get("s", 0)


@dataclass(frozen=True)
class Destination:
    """``sink``/``subscriber``: a ``ref`` (kind, name) with an optional ``uri`` path, or an absolute ``uri``."""

    kind: str | None
    name: str | None
    namespace: str
    uri: str | None

    @classmethod
    def parse(cls, spec: dict[str, Any], namespace: str) -> Destination:
        ref = spec.get("ref") or {}
        if not ref and not spec.get("uri"):
            raise ManifestError("a destination needs ref or uri")
        return cls(kind=ref.get("kind"), name=ref.get("name"), namespace=ref.get("namespace") or namespace, uri=spec.get("uri"))


@dataclass(frozen=True)
class Delivery:
    retry: int = 0
    backoff_policy: str = "exponential"
    backoff_delay: float | None = None
    timeout: float | None = None
    dead_letter_sink: Destination | None = None

    @classmethod
    def parse(cls, spec: dict[str, Any] | None, namespace: str) -> Delivery | None:
        if not spec:
            return None
        policy = spec.get("backoffPolicy", "exponential")
        if policy not in ("exponential", "linear"):
            raise ManifestError(f"backoffPolicy must be exponential or linear, not {policy!r}")
        dls = spec.get("deadLetterSink")
        return cls(
            retry=int(spec.get("retry") or 0),
            backoff_policy=policy,
            backoff_delay=parse_duration(spec["backoffDelay"]) if spec.get("backoffDelay") else None,
            timeout=parse_duration(spec["timeout"]) if spec.get("timeout") else None,
            dead_letter_sink=Destination.parse(dls, namespace) if dls else None,
        )

    def backoff(self, attempt: int) -> float:
        """Wait before retry number ``attempt`` (0-based), as Knative computes it:
        exponential ``delay × 2^attempt``, linear ``delay × attempt``."""
        delay = self.backoff_delay or 0.0
        return delay * (2 ** attempt) if self.backoff_policy == "exponential" else delay * attempt


@dataclass(frozen=True)
class Broker:
    name: str
    namespace: str
    delivery: Delivery | None


@dataclass(frozen=True)
class Trigger:
    name: str
    namespace: str
    broker: str
    filter: dict[str, str]
    subscriber: Destination
    delivery: Delivery | None

    def matches(self, attributes: dict[str, str]) -> bool:
        return all(attributes.get(k) == v for k, v in self.filter.items())


@dataclass(frozen=True)
class PingSource:
    name: str
    namespace: str
    schedule: str
    timezone: str | None
    content_type: str | None
    data: bytes | None
    sink: Destination

    @property
    def source(self) -> str:
        return f"/apis/v1/namespaces/{self.namespace}/pingsources/{self.name}"


@dataclass
class Manifests:
    brokers: list[Broker] = field(default_factory=list)
    triggers: list[Trigger] = field(default_factory=list)
    pingsources: list[PingSource] = field(default_factory=list)


def manifest_files(root: Path = KNATIVE_DIR) -> list[Path]:
    files = sorted(p for p in root.rglob("*.y*ml") if p.suffix in (".yaml", ".yml"))
    return [p for p in files if "overlays" not in p.relative_to(root).parts and p.name not in ("kustomization.yaml", "kustomization.yml")]


def load(root: Path = KNATIVE_DIR) -> Manifests:
    return parse_documents(doc for path in manifest_files(root) for doc in yaml.safe_load_all(path.read_text()))


def parse_documents(documents: Iterable[Any]) -> Manifests:
    out = Manifests()
    seen: set[tuple[str, str, str]] = set()
    for doc in documents:
        if not isinstance(doc, dict):
            continue
        kind, api = doc.get("kind"), str(doc.get("apiVersion", ""))
        meta = doc.get("metadata") or {}
        name, namespace = meta.get("name"), meta.get("namespace") or "default"
        spec = doc.get("spec") or {}
        key = (kind, namespace, name)
        if kind in ("Broker", "Trigger") and api.startswith("eventing.knative.dev/") or kind == "PingSource" and api.startswith("sources.knative.dev/"):
            if key in seen:
                raise ManifestError(f"{kind} {namespace}/{name} is declared twice")
            seen.add(key)
        else:
            continue
        if kind == "Broker":
            out.brokers.append(Broker(name, namespace, Delivery.parse(spec.get("delivery"), namespace)))
        elif kind == "Trigger":
            if spec.get("filters"):
                raise ManifestError(f"Trigger {name}: spec.filters (the new filter dialect) is not supported by the dev router")
            out.triggers.append(Trigger(
                name=name, namespace=namespace, broker=spec.get("broker", "default"),
                filter={k: str(v) for k, v in ((spec.get("filter") or {}).get("attributes") or {}).items()},
                subscriber=Destination.parse(spec["subscriber"], namespace),
                delivery=Delivery.parse(spec.get("delivery"), namespace),
            ))
        else:
            if spec.get("data") is not None and spec.get("dataBase64") is not None:
                raise ManifestError(f"PingSource {name}: data and dataBase64 are mutually exclusive")
            if spec.get("dataBase64") is not None:
                import base64  # noqa: PLC0415

                data: bytes | None = base64.b64decode(spec["dataBase64"])
            else:
                data = spec["data"].encode("utf-8") if spec.get("data") is not None else None
            out.pingsources.append(PingSource(
                name=name, namespace=namespace, schedule=spec.get("schedule") or "* * * * *",
                timezone=spec.get("timezone") or None, content_type=(spec.get("contentType") or "").strip() or None,
                data=data, sink=Destination.parse(spec["sink"], namespace),
            ))
    return out


def delivery_for(trigger: Trigger, brokers: list[Broker]) -> Delivery:
    """The Trigger's own delivery, else its Broker's, else no retries and no dead-letter sink."""
    if trigger.delivery is not None:
        return trigger.delivery
    for broker in brokers:
        if broker.name == trigger.broker and broker.namespace == trigger.namespace and broker.delivery is not None:
            return broker.delivery
    return Delivery()
