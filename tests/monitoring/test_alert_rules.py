"""Prometheus config, alert rules and their promtool unit tests, checked by promtool itself.

promtool comes from Debian's `prometheus` package, which `make test` installs. A missing
promtool fails these tests: alert rules nobody checked must not pass as green.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "monitoring"
ALERTS = MONITORING / "alerts.yml"
# every 2 s as on the embedded stack; the alerts with hour-long thresholds every minute
ALERT_TESTS = (
    MONITORING / "tests" / "alerts_test.yml",
    MONITORING / "tests" / "hours_alerts_test.yml",
)
RUNBOOK_FILES = (ROOT / "README.md",)
DASHBOARDS = sorted((MONITORING / "grafana" / "dashboards").glob("*.json"))
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "1m", "$__range": "1h"}


def promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    if binary is None:
        pytest.fail(
            "promtool not found: run `make test`, which installs Debian's prometheus package "
            "(or: sudo apt-get install -y prometheus)"
        )
    return subprocess.run(
        [binary, *map(str, args)], capture_output=True, text=True, timeout=120, cwd=ROOT
    )


def assert_ok(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, f"{result.args}\n{result.stdout}\n{result.stderr}"


def alert_rules() -> dict[str, dict]:
    groups = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))["groups"]
    return {rule["alert"]: rule for group in groups for rule in group["rules"] if "alert" in rule}


def alert_cases() -> list[tuple[str, bool]]:
    """(alertname, fires) for every alert_rule_test case of the promtool tests."""
    tests = [
        test
        for path in ALERT_TESTS
        for test in yaml.safe_load(path.read_text(encoding="utf-8"))["tests"]
    ]
    return [
        (case["alertname"], bool(case.get("exp_alerts")))
        for test in tests
        for case in test.get("alert_rule_test", [])
    ]


def github_anchors(markdown: str) -> set[str]:
    anchors = set()
    for heading in re.findall(r"^#+\s+(.+?)\s*$", markdown, re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        anchors.add(slug)
    return anchors


# -- promtool ----------------------------------------------------------------------------------
def test_embedded_prometheus_config_is_valid():
    # check config also loads rule_files, relative to the config file
    result = promtool("check", "config", MONITORING / "prometheus.yml")
    assert_ok(result)
    assert "alerts.yml" in result.stdout


def test_compose_prometheus_config_is_valid():
    assert_ok(promtool("check", "config", MONITORING / "prometheus.compose.yml"))


def test_alert_rules_are_valid():
    assert_ok(promtool("check", "rules", ALERTS))


def test_alert_rules_pass_their_promtool_unit_tests():
    assert_ok(promtool("test", "rules", *ALERT_TESTS))


def test_grafana_dashboard_queries_are_valid_promql(tmp_path: Path):
    rules = []
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text(encoding="utf-8"))
        for panel in dashboard["panels"]:
            for target in panel.get("targets", []):
                if "expr" not in target:
                    continue  # a ClickHouse (SQL) panel
                expr = target["expr"]
                for variable, value in GRAFANA_VARIABLES.items():
                    expr = expr.replace(variable, value)
                rules.append(f"      - record: dashboard:query_{len(rules)}\n")
                rules.append(f"        expr: {json.dumps(expr)}\n")
    assert rules
    rule_file = tmp_path / "dashboard_queries.yml"
    rule_file.write_text("groups:\n  - name: dashboard\n    rules:\n" + "".join(rules))
    assert_ok(promtool("check", "rules", rule_file))


# -- the shape of every alert ------------------------------------------------------------------
def test_every_alert_has_a_test_where_it_fires_and_one_where_it_does_not():
    cases = alert_cases()
    assert alert_rules(), "no alert found in alerts.yml"
    for name in alert_rules():
        assert (name, True) in cases, f"no promtool test makes {name} fire"
        assert (name, False) in cases, f"no promtool test shows {name} quiet or resolved"
    assert {name for name, _ in cases} <= set(alert_rules()), "a test names an unknown alert"


@pytest.mark.parametrize("name", sorted(alert_rules()))
def test_alert_has_severity_summary_description_and_runbook(name: str):
    rule = alert_rules()[name]
    assert rule["labels"]["severity"] in {"page", "ticket"}
    assert rule.get("for"), f"{name} has no for: duration"
    annotations = rule["annotations"]
    assert (
        annotations["summary"] and "$value" in annotations["summary"] + annotations["description"]
    )
    assert annotations["runbook_url"] == f"README.md#runbook-{name.lower()}"


@pytest.mark.parametrize("name", sorted(alert_rules()))
def test_runbook_section_exists_for_alert(name: str):
    texts = [path.read_text(encoding="utf-8") for path in RUNBOOK_FILES if path.exists()]
    anchors = set().union(*map(github_anchors, texts))
    assert f"runbook-{name.lower()}" in anchors
