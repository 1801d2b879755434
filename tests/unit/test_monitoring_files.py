"""deploy/monitoring checked by the real tools: promtool (rules, configuration, the unit tests
of every alert), amtool (the Alertmanager example); every alert's labels and annotations;
the dashboard as its generator builds it; the runbook links into docs/operations.md."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.recordings import ROOT

MONITORING = ROOT / "deploy" / "monitoring"
RULES = sorted((MONITORING / "rules").glob("*.yml"))
UNIT_TESTS = MONITORING / "tests" / "alerts_test.yml"
DASHBOARD = MONITORING / "grafana" / "statebridge.json"

pytestmark = pytest.mark.monitoring


def tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed (scripts/ci-install-prometheus.sh installs it)")
    return found


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=MONITORING, capture_output=True, text=True, timeout=120)


def alerts() -> list[dict[str, Any]]:
    found = []
    for path in RULES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            found += [rule for rule in group["rules"] if "alert" in rule]
    return found


def test_promtool_checks_the_rules() -> None:
    done = run(tool("promtool"), "check", "rules", *map(str, RULES))
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_checks_the_configuration() -> None:
    done = run(tool("promtool"), "check", "config", "prometheus.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 rule files found" in done.stdout


def test_amtool_checks_the_alertmanager_example() -> None:
    done = run(tool("amtool"), "check-config", "alertmanager.yml")
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_unit_tests_pass() -> None:
    done = run(tool("promtool"), "test", "rules", str(UNIT_TESTS.relative_to(MONITORING)))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout + done.stderr


def test_every_alert_has_a_unit_test_where_it_fires_and_one_where_it_does_not() -> None:
    cases = yaml.safe_load(UNIT_TESTS.read_text())["tests"]
    fired: set[str] = set()
    quiet: set[str] = set()
    for case in cases:
        for check in case.get("alert_rule_test", []):
            (fired if check["exp_alerts"] else quiet).add(check["alertname"])
    names = {rule["alert"] for rule in alerts()}
    assert len(names) == 12
    assert names - fired == set()
    assert names - quiet == set()


def test_every_alert_has_a_severity_a_summary_and_a_runbook() -> None:
    for rule in alerts():
        assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        assert rule["annotations"]["runbook_url"] == (
            f"docs/operations.md#{rule['alert'].lower()}"
        ), rule["alert"]


def github_anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives the headings: lower case, punctuation dropped, spaces as
    hyphens."""
    anchors = set()
    for line in markdown.splitlines():
        heading = re.match(r"^#{1,6} (.+)$", line)
        if heading:
            text = re.sub(r"[^\w\- ]", "", heading[1].strip().lower())
            anchors.add(text.replace(" ", "-"))
    return anchors


def test_every_runbook_link_has_its_entry_in_the_operations_guide() -> None:
    anchors = github_anchors((ROOT / "docs" / "operations.md").read_text())
    for rule in alerts():
        anchor = rule["annotations"]["runbook_url"].partition("#")[2]
        assert anchor in anchors, rule["alert"]


def test_the_committed_dashboard_is_what_the_generator_builds() -> None:
    pytest.importorskip("grafana_foundation_sdk")
    done = subprocess.run(
        [sys.executable, "-m", "statebridge.ops.monitoring.dashboard", "--check", str(DASHBOARD)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_check_notices_a_changed_dashboard(tmp_path: Path) -> None:
    pytest.importorskip("grafana_foundation_sdk")
    changed = tmp_path / "statebridge.json"
    changed.write_text(DASHBOARD.read_text().replace("Instances up", "Instances"))
    done = subprocess.run(
        [sys.executable, "-m", "statebridge.ops.monitoring.dashboard", "--check", str(changed)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert "regenerate it" in done.stdout
