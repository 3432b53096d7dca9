"""Deployment manifests (knative/, skaffold.yaml, Dockerfile) against the code they deploy.

Pure tests: they read YAML and source files, never a cluster. The overlays are rendered by a
small stand-in for kustomize (``render``) that supports exactly the features knative/ uses and
fails loudly on anything else, so a new kustomize feature in knative/ forces an update here.

The allowed environment names are the fields of ``shared.settings.Settings`` (env name = field
name upper-cased) plus functions-framework's own variables; the event types are the keys of
``shared.events.catalog.CATALOG``. Which function handles which type is the small table below.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.events import catalog
from shared.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
KNATIVE = ROOT / "knative"
NAMESPACE = "patient-mgt"

# --- what the deployment must provide ------------------------------------------------------

# function folder -> (Knative Service, functions-framework target, signature type)
FUNCTIONS = {
    "api": ("api", "api", "http"),
    "lis_consumer": ("lis-consumer", "lis_consumer", "cloudevent"),
    "notify": ("notify", "notify", "cloudevent"),
    "jobs": ("jobs", "jobs", "cloudevent"),
}
SERVICE_OF = {folder: svc for folder, (svc, _, _) in FUNCTIONS.items()}

# The in-cluster subscriptions: event type -> the Service whose function handles it.
SUBSCRIPTIONS = {
    catalog.PATIENT_REGISTERED: "notify",  # welcome
    catalog.RESULT_AVAILABLE: "notify",  # results ready
    catalog.PATIENT_UPDATED: "jobs",  # data-quality recheck
    catalog.LIS_PATIENT_UPDATED: "jobs",  # data-quality recheck
    catalog.LIS_PATIENT_CREATED: "jobs",
    catalog.PATIENT_MERGED: "jobs",  # finish moving large histories
    catalog.PATIENT_UNMERGED: "jobs",  # data-quality recheck of both patients
    catalog.ORDER_OVERDUE: "jobs",  # recorded for the operator
    catalog.JOB_RUN_REQUESTED: "jobs",  # the console's Run now for a job the api cannot run
    catalog.ORDER_REQUESTED: "jobs",  # rendered for the LIS (docs/lis.md §9)
    catalog.ORDER_CHANGED: "jobs",
    catalog.ORDER_CANCELLED: "jobs",
    catalog.RESULT_CRITICAL: "notify",  # the alert to the clinical team
    catalog.CRITICAL_ALERT_ESCALATED: "notify",  # its escalation
    catalog.FHIR_EXPORT_REQUESTED: "jobs",  # a FHIR Bulk Data export, one slice per delivery
}
# Which function can handle which type (jobs also takes every dead letter, at /dead-letter).
HANDLES = {
    "notify": {catalog.PATIENT_REGISTERED, catalog.RESULT_AVAILABLE, catalog.RESULT_CRITICAL, catalog.CRITICAL_ALERT_ESCALATED},
    "jobs": set(SUBSCRIPTIONS) - {catalog.PATIENT_REGISTERED, catalog.RESULT_AVAILABLE, catalog.RESULT_CRITICAL,
                                  catalog.CRITICAL_ALERT_ESCALATED},
}
DEAD_LETTER = {"service": "jobs", "uri": "/dead-letter"}

# PingSource name == job name -> schedule
JOBS = {
    "outbox-sweep": "* * * * *",
    "notifications-due": "* * * * *",
    "data-quality": "15 2 * * *",
    "retention": "30 3 * * *",
    "lis-reconcile": "5 * * * *",
    "critical-escalation": "* * * * *",
}

FRAMEWORK_ENV = {
    "FUNCTION_TARGET",
    "FUNCTION_SIGNATURE_TYPE",
    "FUNCTION_SOURCE",
    "WORKERS",
    "THREADS",
    "CLOUD_RUN_TIMEOUT_SECONDS",
    "THREADED_TIMEOUT_ENABLED",
}
ALLOWED_ENV = {name.upper() for name in Settings.model_fields} | FRAMEWORK_ENV
INJECTED_ENV = {"K_SINK", "PORT", "K_SERVICE", "K_CONFIGURATION", "K_REVISION"}

# Connection budget (docs/deploy.md, "Concurrency and connection budget").
ASSUMED_MAX_CONNECTIONS = 200
SUPERUSER_RESERVED = 3  # PostgreSQL's superuser_reserved_connections default
ADMIN_HEADROOM = 10  # migration Job (1), psql sessions, monitoring

ISO_DURATION = re.compile(r"^P(?!$)(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?$")


# --- loading and rendering ------------------------------------------------------------------


def load_yaml_docs(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def _apply_op(doc: dict[str, Any], op: dict[str, Any]) -> None:
    *parents, last = [_unescape(t) for t in op["path"].lstrip("/").split("/")]
    node: Any = doc
    for token in parents:
        node = node[int(token)] if isinstance(node, list) else node[token]
    key: Any = int(last) if isinstance(node, list) else last
    if op["op"] == "add":
        node[key] = op["value"]
    elif op["op"] == "replace":
        assert key in node if isinstance(node, dict) else key < len(node), f"replace of missing {op['path']}"
        node[key] = op["value"]
    elif op["op"] == "remove":
        del node[key]
    else:
        raise AssertionError(f"JSON patch op {op['op']!r} is not supported by this test's renderer")


def _matches(doc: dict[str, Any], target: dict[str, str]) -> bool:
    group, _, version = doc["apiVersion"].rpartition("/")
    want = {"group": group, "version": version, "kind": doc["kind"], "name": doc["metadata"]["name"]}
    unknown = set(target) - set(want)
    assert not unknown, f"patch target fields {unknown} are not supported by this test's renderer"
    return all(want[k] == v for k, v in target.items())


SUPPORTED_KUSTOMIZE = {
    "apiVersion",
    "kind",
    "resources",
    "patches",
    "configMapGenerator",
    "generatorOptions",
    "commonAnnotations",
}


@cache
def _render(directory: Path) -> tuple[str, ...]:
    kust = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unsupported = set(kust) - SUPPORTED_KUSTOMIZE
    assert not unsupported, f"{directory}: kustomize fields {unsupported} are not supported by this test's renderer"
    docs: list[dict[str, Any]] = []
    for res in kust.get("resources", []):
        path = (directory / res).resolve()
        if path.is_dir():
            docs.extend(yaml.safe_load(d) for d in _render(path))
        else:
            docs.extend(load_yaml_docs(path))
    if kust.get("configMapGenerator"):
        assert (kust.get("generatorOptions") or {}).get("disableNameSuffixHash") is True, (
            f"{directory}: generated ConfigMaps must keep their fixed names"
        )
    for gen in kust.get("configMapGenerator", []):
        data: dict[str, str] = {}
        for literal in gen.get("literals", []):
            key, _, value = literal.partition("=")
            data[key] = value
        for spec in gen.get("files", []):
            key, _, file = spec.partition("=")
            data[key] = (directory / file).read_text()
        namespace = gen.get("namespace", "default")
        if gen.get("behavior") == "merge":
            (existing,) = [
                d
                for d in docs
                if d["kind"] == "ConfigMap"
                and d["metadata"]["name"] == gen["name"]
                and d["metadata"].get("namespace", "default") == namespace
            ]
            existing.setdefault("data", {}).update(data)
        else:
            assert gen.get("behavior", "create") == "create", gen
            docs.append(
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": gen["name"], "namespace": namespace},
                    "data": data,
                }
            )
    for patch in kust.get("patches", []):
        ops = yaml.safe_load(patch["patch"])
        assert isinstance(ops, list), f"{directory}: only inline JSON 6902 patches are supported here"
        hits = [d for d in docs if _matches(d, patch["target"])]
        assert hits, f"{directory}: patch target {patch['target']} matches nothing"
        for doc in hits:
            for op in ops:
                _apply_op(doc, op)
    for doc in docs:
        doc["metadata"].setdefault("annotations", {}).update(kust.get("commonAnnotations", {}))
        if not doc["metadata"]["annotations"]:
            del doc["metadata"]["annotations"]
    return tuple(yaml.safe_dump(d) for d in docs)


def render(relative: str) -> list[dict[str, Any]]:
    return [yaml.safe_load(d) for d in _render((KNATIVE / relative).resolve())]


RENDERINGS = {
    "base": ["platform", "app"],
    "dev": ["overlays/dev/platform", "overlays/dev/app"],
    "prod": ["overlays/prod/platform", "overlays/prod/app"],
}


def rendering(name: str) -> list[dict[str, Any]]:
    return [doc for part in RENDERINGS[name] for doc in render(part)]


def of_kind(docs: list[dict[str, Any]], kind: str, api_prefix: str = "") -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind and d["apiVersion"].startswith(api_prefix)]


def services(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in of_kind(docs, "Service", "serving.knative.dev/")}


def configmap(docs: list[dict[str, Any]]) -> dict[str, str]:
    (cm,) = [d for d in of_kind(docs, "ConfigMap") if d["metadata"]["name"] == "patient-mgt-config"]
    return cm["data"]


def pod_specs(docs: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    for svc in of_kind(docs, "Service", "serving.knative.dev/"):
        yield f"Service/{svc['metadata']['name']}", svc["spec"]["template"]["spec"]
    for job in of_kind(docs, "Job", "batch/"):
        yield f"Job/{job['metadata']['name']}", job["spec"]["template"]["spec"]


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env", [])}


def env_value(container: dict[str, Any], name: str) -> str:
    return env_of(container)[name]["value"]


def annotations(svc: dict[str, Any]) -> dict[str, str]:
    return svc["spec"]["template"]["metadata"].get("annotations", {})


def the_container(svc: dict[str, Any]) -> dict[str, Any]:
    (container,) = svc["spec"]["template"]["spec"]["containers"]
    return container


@cache
def skaffold_configs() -> tuple[dict[str, Any], ...]:
    return tuple(load_yaml_docs(ROOT / "skaffold.yaml"))


def artifacts() -> dict[str, dict[str, Any]]:
    return {a["image"]: a for cfg in skaffold_configs() for a in cfg["build"]["artifacts"]}


# --- functions, images and what they run -----------------------------------------------------


@pytest.mark.parametrize("folder", sorted(FUNCTIONS))
def test_each_function_has_a_service_whose_image_runs_its_target(folder: str) -> None:
    service, target, signature = FUNCTIONS[folder]
    source = f"functions/{folder}/main.py"
    container = the_container(services(rendering("base"))[service])

    assert env_value(container, "FUNCTION_TARGET") == target
    assert env_value(container, "FUNCTION_SIGNATURE_TYPE") == signature
    assert env_value(container, "FUNCTION_SOURCE") == source

    image = container["image"]
    assert image == f"patient-mgt-{service}"
    build = artifacts()[image]
    assert build["context"] == "."
    assert build["docker"]["dockerfile"] == "Dockerfile"
    assert build["docker"]["buildArgs"] == {
        "FUNCTION_DIR": folder,
        "FUNCTION_TARGET": target,
        "FUNCTION_SIGNATURE_TYPE": signature,
    }


def test_the_dockerfile_builds_the_function_folder_named_by_the_build_arg() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "COPY functions/${FUNCTION_DIR}/ functions/${FUNCTION_DIR}/" in dockerfile
    assert "FUNCTION_SOURCE=functions/${FUNCTION_DIR}/main.py" in dockerfile
    assert "FUNCTION_TARGET=${FUNCTION_TARGET}" in dockerfile
    assert "FUNCTION_SIGNATURE_TYPE=${FUNCTION_SIGNATURE_TYPE}" in dockerfile
    assert "--require-hashes" in dockerfile and "requirements.lock" in dockerfile
    assert re.search(r"^WORKDIR /app$", dockerfile, re.M), "FUNCTION_SOURCE is relative to /app"
    (user,) = re.findall(r"^USER (\d+):(\d+)$", dockerfile, re.M)
    for _, spec in pod_specs(rendering("base")):
        for c in spec["containers"]:
            assert (str(c["securityContext"]["runAsUser"]), str(c["securityContext"]["runAsGroup"])) == user


SIGNATURE_DECORATORS = {"http": "http", "cloudevent": "cloud_event"}


@pytest.mark.parametrize("folder", sorted(FUNCTIONS))
def test_function_source_defines_the_target_with_the_matching_decorator(folder: str) -> None:
    _, target, signature = FUNCTIONS[folder]
    path = ROOT / "functions" / folder / "main.py"
    if not path.exists():
        pytest.fail(f"{path.relative_to(ROOT)} is what the {folder} image runs, and it does not exist")
    tree = ast.parse(path.read_text())
    (func,) = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == target]
    decorators = {ast.unparse(d) for d in func.decorator_list}
    assert f"functions_framework.{SIGNATURE_DECORATORS[signature]}" in decorators


def test_skaffold_builds_every_image_the_manifests_name_and_nothing_else() -> None:
    assert [c["apiVersion"] for c in skaffold_configs()] == ["skaffold/v4beta14"] * len(skaffold_configs())
    named = set()
    for name in RENDERINGS:
        for _, spec in pod_specs(rendering(name)):
            named |= {c["image"] for c in spec["containers"]}
    assert named == set(artifacts())
    assert len([a for cfg in skaffold_configs() for a in cfg["build"]["artifacts"]]) == len(artifacts())


# --- deploy ordering ---------------------------------------------------------------------------


def _manifest_paths(cfg: dict[str, Any], profile: str | None) -> list[str]:
    section = cfg["manifests"]
    if profile:
        (prof,) = [p for p in cfg.get("profiles", []) if p["name"] == profile]
        section = prof.get("manifests", section)
    return section["kustomize"]["paths"]


def _hooks(cfg: dict[str, Any], profile: str | None) -> dict[str, list[list[str]]]:
    deploy = cfg["deploy"]
    if profile:
        (prof,) = [p for p in cfg.get("profiles", []) if p["name"] == profile]
        deploy = prof.get("deploy", deploy)
    hooks = deploy["kubectl"].get("hooks", {})
    return {when: [h["host"]["command"] for h in hooks.get(when, [])] for when in ("before", "after")}


@pytest.mark.parametrize("profile", [None, "dev", "prod"])
def test_migrations_complete_before_the_services_are_applied(profile: str | None) -> None:
    migrate_cfg, app_cfg = skaffold_configs()
    stage1 = [d for p in _manifest_paths(migrate_cfg, profile) for d in render(p.removeprefix("knative/"))]
    stage2 = [d for p in _manifest_paths(app_cfg, profile) for d in render(p.removeprefix("knative/"))]
    assert of_kind(stage1, "Job") and not services(stage1)
    assert set(services(stage2)) == set(SERVICE_OF.values()) and not of_kind(stage2, "Job")
    hooks = _hooks(migrate_cfg, profile)
    assert ["sh", "knative/hooks/deploy.sh", "delete-migration-job"] in hooks["before"]
    assert hooks["after"] == [["sh", "knative/hooks/deploy.sh", "wait-for-migration"]]
    if profile == "prod":
        assert hooks["before"][0] == ["sh", "knative/hooks/deploy.sh", "check-site-values"]
    (job,) = of_kind(stage1, "Job")
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["patient-mgt", "migrate"]
    assert container["image"] in artifacts()
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    for cfg in (migrate_cfg, app_cfg):
        for path in _manifest_paths(cfg, profile):
            assert (ROOT / path / "kustomization.yaml").exists()


def test_deploy_hook_script_knows_every_step_skaffold_calls() -> None:
    script = (KNATIVE / "hooks" / "deploy.sh").read_text()
    for cfg in skaffold_configs():
        for profile in (None, "dev", "prod"):
            for commands in _hooks(cfg, profile).values():
                for command in commands:
                    assert command[:2] == ["sh", "knative/hooks/deploy.sh"]
                    assert f"\n{command[2]})\n" in script


# --- eventing -----------------------------------------------------------------------------------


def _assert_dead_letter_to_jobs(delivery: dict[str, Any]) -> None:
    sink = delivery["deadLetterSink"]
    assert sink["ref"] == {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": DEAD_LETTER["service"]}
    assert sink["uri"] == DEAD_LETTER["uri"]


def test_every_trigger_filters_one_catalog_type_and_reaches_its_handler() -> None:
    triggers = of_kind(load_yaml_docs(KNATIVE / "app" / "triggers.yaml"), "Trigger")
    seen = {}
    for trig in triggers:
        spec = trig["spec"]
        assert spec["broker"] == "default"
        assert "filters" not in spec
        assert list(spec["filter"]["attributes"]) == ["type"], trig["metadata"]["name"]
        event_type = spec["filter"]["attributes"]["type"]
        assert event_type in catalog.CATALOG
        ref = spec["subscriber"]["ref"]
        assert ref["apiVersion"] == "serving.knative.dev/v1" and ref["kind"] == "Service"
        assert event_type in HANDLES[ref["name"]], f"{ref['name']} does not handle {event_type}"
        assert "uri" not in spec["subscriber"]
        delivery = spec["delivery"]
        assert isinstance(delivery["retry"], int) and delivery["retry"] >= 3
        assert delivery["backoffPolicy"] == "exponential"
        assert ISO_DURATION.match(delivery["backoffDelay"])
        _assert_dead_letter_to_jobs(delivery)
        assert event_type not in seen, f"two Triggers for {event_type}"
        seen[event_type] = ref["name"]
    assert seen == SUBSCRIPTIONS


def test_triggers_live_in_one_file() -> None:
    for path in KNATIVE.rglob("*.yaml"):
        if path.name != "kustomization.yaml" and path != KNATIVE / "app" / "triggers.yaml":
            assert not of_kind(load_yaml_docs(path), "Trigger"), path


def test_broker_and_sinkbinding() -> None:
    docs = rendering("base")
    (broker,) = of_kind(docs, "Broker")
    assert broker["metadata"]["name"] == "default" and broker["metadata"]["namespace"] == NAMESPACE
    assert broker["metadata"]["annotations"]["eventing.knative.dev/broker.class"]
    _assert_dead_letter_to_jobs(broker["spec"]["delivery"])

    (binding,) = of_kind(docs, "SinkBinding")
    assert binding["spec"]["sink"]["ref"]["kind"] == "Broker" and binding["spec"]["sink"]["ref"]["name"] == "default"
    subject = binding["spec"]["subject"]
    assert (subject["apiVersion"], subject["kind"]) == ("serving.knative.dev/v1", "Service")
    selector = subject["selector"]["matchLabels"]
    for name in ("dev", "prod", "base"):
        for svc in services(rendering(name)).values():
            labels = svc["metadata"]["labels"]
            assert selector.items() <= labels.items(), f"{svc['metadata']['name']} would get no K_SINK"


def test_pingsources_run_the_jobs_on_the_jobs_service() -> None:
    pings = {p["metadata"]["name"]: p["spec"] for p in of_kind(rendering("base"), "PingSource")}
    assert {name: spec["schedule"] for name, spec in pings.items()} == JOBS
    for name, spec in pings.items():
        assert spec["contentType"] == "application/json"
        assert json.loads(spec["data"]) == {"job": name}
        assert "dataBase64" not in spec
        assert spec["sink"]["ref"] == {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "jobs"}


# --- settings and secrets ---------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(RENDERINGS))
def test_only_known_settings_are_set_and_secrets_come_from_the_secret(name: str) -> None:
    docs = rendering(name)
    assert not of_kind(docs, "Secret"), "secret values never live in the repository"
    for key in configmap(docs):
        assert key in ALLOWED_ENV and key not in INJECTED_ENV, f"ConfigMap key {key}"
        assert key != "DATABASE_URL"
    for where, spec in pod_specs(docs):
        for c in spec["containers"]:
            assert c["envFrom"] == [{"configMapRef": {"name": "patient-mgt-config"}}], where
            for env_name, entry in env_of(c).items():
                assert env_name in ALLOWED_ENV or env_name.startswith("OTEL_"), f"{where}: env {env_name}"
                assert env_name not in INJECTED_ENV, f"{where}: {env_name} is set by the platform"
            db = env_of(c)["DATABASE_URL"]
            assert db == {
                "name": "DATABASE_URL",
                "valueFrom": {"secretKeyRef": {"name": "patient-mgt-db", "key": "url"}},
            }, where
            for entry in env_of(c).values():
                if "valueFrom" in entry and entry["name"] != "DATABASE_URL":
                    assert "secretKeyRef" not in entry["valueFrom"], where


# --- container security and resources ----------------------------------------------------------


@pytest.mark.parametrize("name", sorted(RENDERINGS))
def test_every_container_is_locked_down_and_sized(name: str) -> None:
    for where, spec in pod_specs(rendering(name)):
        assert spec["automountServiceAccountToken"] is False, where
        assert spec["serviceAccountName"].startswith("patient-mgt-"), where
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for c in spec["containers"]:
            sc = c["securityContext"]
            assert sc["runAsNonRoot"] is True, where
            assert isinstance(sc["runAsUser"], int) and sc["runAsUser"] > 0, where
            assert sc["readOnlyRootFilesystem"] is True, where
            assert sc["allowPrivilegeEscalation"] is False, where
            assert sc["capabilities"] == {"drop": ["ALL"]}, where
            assert sc["seccompProfile"] == {"type": "RuntimeDefault"}, where
            assert "privileged" not in sc, where
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(c["resources"][kind]), f"{where}: {kind}"
            assert c["resources"]["requests"]["memory"] == c["resources"]["limits"]["memory"], where
            mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
            assert "emptyDir" in volumes[mounts["/tmp"]], f"{where}: /tmp must be a writable emptyDir"


def test_knative_webhook_rules_for_ports_and_env() -> None:
    for svc in services(rendering("base")).values():
        c = the_container(svc)
        assert c["ports"] == [{"name": "http1", "containerPort": 8080}]


# --- scaling, concurrency and the connection budget ----------------------------------------------


def test_scaling_policy() -> None:
    for name in ("base", "prod"):
        svcs = services(rendering(name))
        api = annotations(svcs["api"])
        assert int(api["autoscaling.knative.dev/min-scale"]) >= 2, "api is HA"
        assert int(api["autoscaling.knative.dev/max-scale"]) >= int(api["autoscaling.knative.dev/min-scale"])
        assert api["autoscaling.knative.dev/metric"] == "concurrency"
        assert 0 < int(api["autoscaling.knative.dev/target"]) <= svcs["api"]["spec"]["template"]["spec"]["containerConcurrency"]
        assert int(annotations(svcs["lis-consumer"])["autoscaling.knative.dev/min-scale"]) >= 1
        for quiet in ("notify", "jobs"):
            assert annotations(svcs[quiet])["autoscaling.knative.dev/min-scale"] == "0"
            assert svcs[quiet]["metadata"]["labels"]["networking.knative.dev/visibility"] == "cluster-local"
        for svc in svcs.values():
            assert "autoscaling.knative.dev/max-scale" in annotations(svc)

    c = the_container(services(rendering("base"))["api"])
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"


def test_dev_scales_everything_to_zero_and_prints_notifications() -> None:
    dev = rendering("dev")
    base = services(rendering("base"))
    for name, svc in services(dev).items():
        assert annotations(svc)["autoscaling.knative.dev/min-scale"] == "0", name
        assert int(annotations(svc)["autoscaling.knative.dev/max-scale"]) <= int(
            annotations(base[name])["autoscaling.knative.dev/max-scale"]
        )
    assert configmap(dev)["NOTIFY_PROVIDER"] == "console"
    assert "PUSH_AUDIENCE" not in configmap(dev), "the Pub/Sub emulator sends no token"


@pytest.mark.parametrize("name", sorted(RENDERINGS))
def test_concurrency_threads_and_pool_agree(name: str) -> None:
    for svc_name, svc in services(rendering(name)).items():
        c = the_container(svc)
        workers = int(env_value(c, "WORKERS"))
        threads = int(env_value(c, "THREADS"))
        pool = int(env_value(c, "DB_POOL_SIZE"))
        cc = svc["spec"]["template"]["spec"]["containerConcurrency"]
        assert workers == 1, f"{svc_name}: the pool is per process; keep one worker"
        assert cc == workers * threads == pool, svc_name


def test_pools_at_max_scale_fit_under_max_connections() -> None:
    per_service = {}
    for name, svc in services(rendering("prod")).items():
        max_scale = int(annotations(svc)["autoscaling.knative.dev/max-scale"])
        per_service[name] = max_scale * int(env_value(the_container(svc), "DB_POOL_SIZE"))
    steady = sum(per_service.values())
    # During a rollout the old revision's pods still hold their pools until they drain.
    rollout_overlap = max(per_service.values())
    assert steady + rollout_overlap + ADMIN_HEADROOM < ASSUMED_MAX_CONNECTIONS - SUPERUSER_RESERVED, per_service
    doc = (ROOT / "docs" / "deploy.md").read_text()
    assert f"max_connections = {ASSUMED_MAX_CONNECTIONS}" in doc
    assert f"{steady} connections" in doc, "docs/deploy.md states the steady-state total"


def test_timeouts_nest() -> None:
    svcs = services(rendering("base"))
    jobs = svcs["jobs"]
    budget = float(env_value(the_container(jobs), "JOB_TIME_BUDGET_SECONDS"))
    assert budget < 60, "a minutely job must finish before the next tick"
    assert budget < jobs["spec"]["template"]["spec"]["timeoutSeconds"]
    (sub,) = [
        d for d in load_yaml_docs(KNATIVE / "gcp" / "pubsub.yaml") if d["metadata"]["name"] == "lis-inbound-lis-consumer"
    ]
    assert svcs["lis-consumer"]["spec"]["template"]["spec"]["timeoutSeconds"] == sub["spec"]["ackDeadlineSeconds"]


# --- exposure of lis-consumer and the Pub/Sub side ------------------------------------------------


def _visibility(svc: dict[str, Any]) -> str:
    return svc["metadata"]["labels"].get("networking.knative.dev/visibility", "external")


def test_lis_consumer_is_external_only_with_token_checks_or_on_a_dev_cluster() -> None:
    assert _visibility(services(rendering("base"))["lis-consumer"]) == "cluster-local"
    prod = rendering("prod")
    assert _visibility(services(prod)["lis-consumer"]) == "external"
    assert configmap(prod)["PUSH_AUDIENCE"].startswith("https://")
    assert configmap(prod)["PUSH_SERVICE_ACCOUNT"].endswith(".iam.gserviceaccount.com")
    assert configmap(prod)["NOTIFY_PROVIDER"] == "aws"


def test_pubsub_resources_match_the_prod_settings() -> None:
    gcp = render("gcp")
    settings = configmap(rendering("prod"))
    project = settings["GOOGLE_CLOUD_PROJECT"]
    for doc in gcp:
        assert doc["metadata"]["annotations"]["cnrm.cloud.google.com/project-id"] == project
        if doc["kind"] in ("PubSubTopic", "PubSubSubscription"):
            assert doc["metadata"]["annotations"]["cnrm.cloud.google.com/deletion-policy"] == "abandon"
    topics = {d["metadata"]["name"] for d in of_kind(gcp, "PubSubTopic")}
    assert topics == {"lis-inbound", "lis-inbound-dead-letter"}
    subs = {d["metadata"]["name"]: d["spec"] for d in of_kind(gcp, "PubSubSubscription")}
    push = subs["lis-inbound-lis-consumer"]
    assert push["topicRef"] == {"name": "lis-inbound"}
    assert push["enableMessageOrdering"] is True
    assert push["expirationPolicy"] == {"ttl": ""}
    assert {"minimumBackoff", "maximumBackoff"} <= set(push["retryPolicy"])
    assert push["deadLetterPolicy"]["deadLetterTopicRef"] == {"name": "lis-inbound-dead-letter"}
    assert 5 <= push["deadLetterPolicy"]["maxDeliveryAttempts"] <= 100
    endpoint = push["pushConfig"]["pushEndpoint"]
    assert endpoint == f"{settings['PUSH_AUDIENCE']}/projects/{project}/topics/lis-inbound"
    assert push["pushConfig"]["oidcToken"] == {
        "serviceAccountEmail": settings["PUSH_SERVICE_ACCOUNT"],
        "audience": settings["PUSH_AUDIENCE"],
    }
    (invoker,) = of_kind(gcp, "IAMServiceAccount")
    assert settings["PUSH_SERVICE_ACCOUNT"] == f"{invoker['metadata']['name']}@{project}.iam.gserviceaccount.com"
    assert any(s["topicRef"] == {"name": "lis-inbound-dead-letter"} for s in subs.values()), "dead letters need a subscription"
    grants = {(m["spec"]["role"], m["spec"]["resourceRef"]["name"]) for m in of_kind(gcp, "IAMPolicyMember")}
    assert grants == {
        ("roles/pubsub.publisher", "lis-inbound-dead-letter"),
        ("roles/pubsub.subscriber", "lis-inbound-lis-consumer"),
        ("roles/iam.serviceAccountTokenCreator", invoker["metadata"]["name"]),
    }
