"""The Kubernetes manifests (deploy/kubernetes): kustomize renders the base and the prod
overlay, every resource validates against Kubernetes' schema (kubernetes-validate, strict),
and the values that must agree with the app and the nginx config do. No cluster runs here."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any, cast

import pytest
import yaml

from statebridge.api.app import build_app
from statebridge.asgi.fastlane import route_entries
from statebridge.runtime import granian as granian_server
from tests.support.recordings import ROOT

KUBECTL = shutil.which("kubectl")
KUBERNETES = ROOT / "deploy" / "kubernetes"
TARGETS = ["base", "overlays/prod"]
SCHEMA_VERSION = "1.32"  # the Kubernetes release the manifests are written for


def kustomize(folder: Path) -> list[dict[str, Any]]:
    if KUBECTL is None:
        pytest.skip("kubectl (with its built-in kustomize) is not installed")
    done = subprocess.run(
        [KUBECTL, "kustomize", str(folder)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def schema_errors(resources: list[dict[str, Any]]) -> list[str]:
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    errors = []
    for resource in resources:
        name = f"{resource.get('kind')}/{resource.get('metadata', {}).get('name')}"
        try:
            kubernetes_validate.validate(resource, SCHEMA_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(part) for part in exc.path)
            errors.append(f"{name}: {path}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError as exc:
            errors.append(f"{name}: {exc.message}")
    return errors


def of_kind(resources: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [resource for resource in resources if resource["kind"] == kind]
    assert len(found) == 1, f"one {kind} expected, found {len(found)}"
    return found[0]


@pytest.fixture(scope="module", params=TARGETS)
def rendered(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    return kustomize(KUBERNETES / request.param)


def test_every_resource_validates(rendered: list[dict[str, Any]]) -> None:
    kinds = sorted(resource["kind"] for resource in rendered)
    assert kinds == [
        "ConfigMap",
        "Deployment",
        "HorizontalPodAutoscaler",
        "Ingress",
        "Job",
        "PodDisruptionBudget",
        "Service",
    ]
    assert schema_errors(rendered) == []


@pytest.mark.parametrize(
    ("wrong", "right", "field"),
    [
        ('containerPort: "eight thousand"', "containerPort: 8000", "containerPort"),
        ("periodSecond: 2", "periodSeconds: 2", "periodSecond"),
    ],
)
def test_an_invalid_manifest_is_caught(tmp_path: Path, wrong: str, right: str, field: str) -> None:
    """The validation can fail: the base with a port given as text, or a misspelt field."""
    copy = tmp_path / "base"
    shutil.copytree(KUBERNETES / "base", copy)
    deployment = copy / "deployment.yaml"
    deployment.write_text(deployment.read_text().replace(right, wrong, 1))
    errors = schema_errors(kustomize(copy))
    assert len(errors) == 1 and field in errors[0], errors


def test_probes_use_the_apps_routes(rendered: list[dict[str, Any]]) -> None:
    app = build_app(cast(Any, None), "combined")  # routes only: no request is served
    paths = {entry.path_format for entry in route_entries(app) if "GET" in entry.methods}
    container = of_kind(rendered, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    probes = {
        kind: container[kind]["httpGet"]["path"]
        for kind in ("startupProbe", "readinessProbe", "livenessProbe")
    }
    assert probes == {
        "startupProbe": "/health/live",
        "readinessProbe": "/health/ready",
        "livenessProbe": "/health/live",
    }
    assert set(probes.values()) <= paths
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports["http"] == 8000 and container["readinessProbe"]["httpGet"]["port"] == "http"


def test_the_grace_period_outlasts_the_drain(rendered: list[dict[str, Any]]) -> None:
    """preStop sleep + the app's graceful stop + Granian's worker kill fit in the grace."""
    spec = of_kind(rendered, "Deployment")["spec"]["template"]["spec"]
    container = spec["containers"][0]
    pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    server = (ROOT / "statebridge" / "runtime" / "server.py").read_text()
    uvicorn_grace = int(re.search(r"timeout_graceful_shutdown=(\d+)", server).group(1))  # type: ignore[union-attr]
    drain = max(granian_server.GRACE_SECONDS + granian_server.KILL_SECONDS, uvicorn_grace)
    assert spec["terminationGracePeriodSeconds"] > int(pre_stop[1]) + drain


def test_pods_run_as_the_images_user_without_privileges(
    rendered: list[dict[str, Any]],
) -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    uid = int(re.search(r"--uid (\d+)", dockerfile).group(1))  # type: ignore[union-attr]
    for kind in ("Deployment", "Job"):
        pod = of_kind(rendered, kind)["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == uid
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False
            assert context["readOnlyRootFilesystem"] is True
            assert context["capabilities"]["drop"] == ["ALL"]
            assert {"requests", "limits"} <= set(container["resources"])


def test_the_rate_limit_is_nginx_prods(rendered: list[dict[str, Any]]) -> None:
    conf = (ROOT / "nginx" / "nginx.prod.conf").read_text()
    rate = re.search(r"limit_req_zone \S+ zone=api:\S+ rate=(\d+)r/s;", conf)
    bursts = set(re.findall(r"limit_req zone=api burst=(\d+)", conf))
    assert rate is not None and len(bursts) == 1
    annotations = of_kind(rendered, "Ingress")["metadata"]["annotations"]
    rps = int(annotations["nginx.ingress.kubernetes.io/limit-rps"])
    multiplier = int(annotations["nginx.ingress.kubernetes.io/limit-burst-multiplier"])
    assert rps == int(rate.group(1))
    assert rps * multiplier == int(bursts.pop())
    assert of_kind(rendered, "Ingress")["spec"]["tls"][0]["secretName"]


def test_secrets_are_referenced_never_inlined(rendered: list[dict[str, Any]]) -> None:
    assert not [resource for resource in rendered if resource["kind"] == "Secret"]
    for kind in ("Deployment", "Job"):
        container = of_kind(rendered, kind)["spec"]["template"]["spec"]["containers"][0]
        refs = [
            source["secretRef"]["name"] for source in container["envFrom"] if "secretRef" in source
        ]
        assert refs == ["statebridge-secrets"]
        names = {entry["name"] for entry in container.get("env", [])}
        assert not names & {"DATABASE_URL", "REDIS_URL", "POSTGRES_PASSWORD"}
    config = of_kind(rendered, "ConfigMap")["data"]
    assert not any("URL" in key or "PASSWORD" in key for key in config)


def test_the_migration_job_and_the_replicas(rendered: list[dict[str, Any]]) -> None:
    job = of_kind(rendered, "Job")["spec"]["template"]["spec"]
    assert job["containers"][0]["args"] == ["statebridge", "db", "upgrade"]
    assert job["restartPolicy"] == "Never"
    assert of_kind(rendered, "ConfigMap")["data"]["STATEBRIDGE_MIGRATE"] == "0"
    pod = of_kind(rendered, "Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert pod["prometheus.io/scrape"] == "true" and pod["prometheus.io/path"] == "/metrics"
    hpa = of_kind(rendered, "HorizontalPodAutoscaler")["spec"]
    assert hpa["scaleTargetRef"]["name"] == of_kind(rendered, "Deployment")["metadata"]["name"]
    assert 1 <= hpa["minReplicas"] < hpa["maxReplicas"]
    pdb = of_kind(rendered, "PodDisruptionBudget")["spec"]
    assert pdb["selector"]["matchLabels"].items() <= (
        of_kind(rendered, "Deployment")["spec"]["template"]["metadata"]["labels"].items()
    )
