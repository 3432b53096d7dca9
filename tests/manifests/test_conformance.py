"""The manifests against the vendored upstream schemas (tests/manifests/conformance.py), in `make test`.

The broken copies prove the check can fail: each break is one a reviewer could miss and the
cluster would act on (the API server silently prunes an unknown field; a webhook refuses a
reserved env var at deploy time; a dangling reference never delivers).
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.manifests.conformance import ROOT, check, main


def test_the_repository_manifests_conform(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1].endswith("documents checked, 0 problems")
    assert int(out[-1].split()[0]) >= 30, "every manifest and both skaffold configs are read"
    # Only Config Connector kinds go unchecked (no schema is vendored for them).
    assert all(".cnrm.cloud.google.com/" in line for line in out if line.startswith("note:"))


def _copy(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "knative", tmp_path / "knative")
    shutil.copyfile(ROOT / "skaffold.yaml", tmp_path / "skaffold.yaml")
    return tmp_path


def _edit(path: Path, change: Callable[[list[dict[str, Any]]], None]) -> None:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    change(docs)
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))


def _of(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    return next(d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name))


def _service_container(docs: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return _of(docs, "Service", name)["spec"]["template"]["spec"]["containers"][0]


BREAKS: dict[str, tuple[str, Callable[[list[dict[str, Any]]], None], str]] = {
    # name: (file under the copy, the change, what the problem line must say)
    "misspelt container field": (
        "knative/app/services.yaml", lambda d: _service_container(d, "api").update(imagePullPolicyy="Always"),
        "Additional properties are not allowed ('imagePullPolicyy' was unexpected)"),
    "reserved env var": (
        "knative/app/services.yaml", lambda d: _service_container(d, "notify").setdefault("env", []).append(
            {"name": "PORT", "value": "9000"}), "env PORT is reserved: Knative sets it"),
    "legacy autoscaling key": (
        "knative/app/services.yaml", lambda d: _of(d, "Service", "jobs")["spec"]["template"]["metadata"]
        .setdefault("annotations", {}).update({"autoscaling.knative.dev/minScale": "1"}), "legacy camelCase spelling"),
    "removed PingSource field": (
        "knative/app/pingsources.yaml", lambda d: _of(d, "PingSource")["spec"].update(jsonData="{}"),
        "'jsonData' was unexpected"),
    "dangling trigger subscriber": (
        "knative/app/triggers.yaml", lambda d: _of(d, "Trigger")["spec"]["subscriber"]["ref"].update(name="nobody"),
        "subscriber refers to Service/nobody, which no manifest defines"),
    "core kind, strict": (
        "knative/platform/migrate-job.yaml", lambda d: _of(d, "Job")["spec"]["template"]["spec"].update(restartPolicyy="Never"),
        "'restartPolicyy' was unexpected"),
    "core kind, wrong type": (
        "knative/platform/config.yaml", lambda d: _of(d, "ConfigMap")["data"].update(WORKERS=1), "data/WORKERS: 1 is not of type"),
    "skaffold schema": (
        "skaffold.yaml", lambda d: d[0]["build"]["artifacts"][0].update(dockerfile="Dockerfile"),
        "'dockerfile' was unexpected"),
    "image nobody builds": (
        "knative/app/services.yaml", lambda d: _service_container(d, "api").update(image="patient-mgt-apii"),
        "image 'patient-mgt-apii' used by a manifest is built by no artifact"),
}


@pytest.mark.parametrize("name", sorted(BREAKS))
def test_a_broken_manifest_is_reported(tmp_path: Path, name: str, capsys: pytest.CaptureFixture[str]) -> None:
    root = _copy(tmp_path)
    relative, change, expected = BREAKS[name]
    _edit(root / relative, change)
    report = check(root)
    assert report.problems, name
    assert any(expected in line for line in report.problems), report.problems
    where = "skaffold.yaml" if relative == "skaffold.yaml" else relative
    assert all(line.startswith(where) or line.startswith("skaffold.yaml") for line in report.problems), report.problems
    assert main(["--root", str(root)]) == 1
    assert capsys.readouterr().out.splitlines()[-1].endswith(f"{len(report.problems)} problem" + ("s" if len(report.problems) != 1 else ""))


def test_an_unparsable_file_and_a_missing_folder_are_problems(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    (root / "knative" / "app" / "broken.yaml").write_text("kind: [unclosed\n")
    assert any(line.startswith("knative/app/broken.yaml: does not parse") for line in check(root).problems)
    assert check(tmp_path / "nowhere").problems == ["knative/: missing"]


def test_the_vendored_schemas_are_the_ones_the_provenance_table_names() -> None:
    folder = ROOT / "tests" / "fixtures" / "schemas"
    rows = [line.split("|") for line in (folder / "README.md").read_text().splitlines() if line.startswith("| `")]
    table = {cells[1].strip().strip("`"): cells[-2].strip().strip("`") for cells in rows}
    on_disk = {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*.json")}
    assert table == on_disk


def test_make_check_manifests_uses_only_what_the_repository_ships() -> None:
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile.split("\ncheck-manifests:", 1)[1].split("\n\n", 1)[0]
    assert "python -m tests.manifests.conformance" in recipe and "../" not in recipe
