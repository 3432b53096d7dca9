"""The MLLP adapter's Deployment and Service (knative/app/mllp.yaml) against the code they run."""

from __future__ import annotations

from pathlib import Path

import yaml

from shared.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DOCS = [d for d in yaml.safe_load_all((ROOT / "knative/app/mllp.yaml").read_text()) if d]
SETTINGS = {name.upper() for name in Settings.model_fields}


def _one(kind: str) -> dict:
    (doc,) = [d for d in DOCS if d["kind"] == kind]
    return doc


def test_listed_in_the_app_stage():
    assert "mllp.yaml" in yaml.safe_load((ROOT / "knative/app/kustomization.yaml").read_text())["resources"]


def test_the_deployment_runs_the_listener_on_the_port_the_service_targets():
    deployment, service = _one("Deployment"), _one("Service")
    assert deployment["apiVersion"] == "apps/v1" and service["apiVersion"] == "v1"  # not Knative: TCP
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["patient-mgt", "mllp"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert set(env) <= SETTINGS | {"OTEL_SERVICE_NAME"}
    db = next(e for e in container["env"] if e["name"] == "DATABASE_URL")
    assert db["valueFrom"] == {"secretKeyRef": {"name": "patient-mgt-db", "key": "url"}}  # never a literal
    (port,) = container["ports"]
    assert (port["containerPort"], port["protocol"]) == (int(env["MLLP_PORT"]), "TCP") and env["MLLP_HOST"] == "0.0.0.0"
    (svc_port,) = service["spec"]["ports"]
    assert svc_port["targetPort"] == port["name"] and svc_port["protocol"] == "TCP"
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert deployment["spec"]["template"]["metadata"]["labels"].items() >= service["spec"]["selector"].items()


def test_the_image_is_one_skaffold_builds():
    (container,) = _one("Deployment")["spec"]["template"]["spec"]["containers"]
    images = {a["image"] for cfg in yaml.safe_load_all((ROOT / "skaffold.yaml").read_text()) for a in cfg["build"]["artifacts"]}
    assert container["image"] in images


def test_locked_down_sized_and_with_its_own_service_account():
    spec = _one("Deployment")["spec"]["template"]["spec"]
    assert spec["automountServiceAccountToken"] is False and spec["serviceAccountName"] == "patient-mgt-mllp"
    accounts = [d for d in yaml.safe_load_all((ROOT / "knative/platform/serviceaccounts.yaml").read_text()) if d]
    assert "patient-mgt-mllp" in {a["metadata"]["name"] for a in accounts}
    (c,) = spec["containers"]
    sc = c["securityContext"]
    assert sc["runAsNonRoot"] is True and sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]} and sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert c["resources"]["requests"]["memory"] == c["resources"]["limits"]["memory"]
    assert {m["mountPath"] for m in c["volumeMounts"]} == {"/tmp"}
