"""docker-compose.yml, the Dockerfile and deploy/ agree with the code they run.

This machine has no Docker engine, so the stack is checked by reading it: every service's
command is a real `govpulse` command with options click accepts, every GOVPULSE_* variable is
a setting (or an option's documented variable), every mounted file exists, every secret is
made by deploy/make-secrets.sh, every ${VARIABLE} is in .env.example, and Prometheus scrapes
services and ports that exist. `docker compose config -q` runs where the compose plugin is.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from govpulse.cli import main
from govpulse.commands.common import DEFAULT_METRICS_PORTS
from govpulse.settings import Settings, env_name

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
VARIABLE = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


def _env_example() -> dict[str, str]:
    values = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value
    return values


def _interpolate(value: str) -> str:
    """${VAR:-default} as compose resolves it with the values of .env.example."""
    example = _env_example()

    def one(match: re.Match[str]) -> str:
        name, operator, default = match.groups()
        if example.get(name):
            return example[name]
        return default or "" if operator in (":-", "-") else example.get(name, "")

    return VARIABLE.sub(one, value).replace("$$", "$")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def _govpulse_services(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Services running the project's image (built from the Dockerfile)."""
    return {name: s for name, s in services.items() if "govpulse" in str(s.get("image", ""))}


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.partition("=")[::2] for item in env)
    return {key: str(value) for key, value in env.items()}


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> Iterator[click.Command]:
    for name, command in group.commands.items():
        yield command
        if isinstance(command, click.Group):
            yield from _commands(command, (*prefix, name))


def _option_variables() -> set[str]:
    """Environment variables that `govpulse` options read (click envvar=…)."""
    found = set()
    for command in _commands(main):
        for param in command.params:
            envvar = getattr(param, "envvar", None)
            found.update([envvar] if isinstance(envvar, str) else envvar or [])
    return found


def _grafana_variables() -> set[str]:
    """GOVPULSE_* variables the Grafana provisioning files read (${…} in them)."""
    text = "".join(p.read_text() for p in (ROOT / "monitoring/grafana/provisioning").rglob("*.yml"))
    return set(re.findall(r"\$\{?(GOVPULSE_[A-Z0-9_]+)", text))


# -- the govpulse services ----------------------------------------------------------------------


def test_the_compose_file_parses_and_has_the_production_services(services):
    for name in ("kafka-1", "kafka-2", "kafka-3", "schema-registry", "clickhouse", "topics",
                 "migrate", "streams", "sink", "dashboard", "prometheus", "alertmanager",
                 "grafana", "simulator"):  # fmt: skip
        assert name in services, name
    assert services["simulator"]["profiles"] == ["demo"]
    assert {"clickhouse-keeper-1", "clickhouse-s1r1", "clickhouse-s2r2"} <= set(services)
    assert all(services[n]["profiles"] == ["replicated"] for n in services if "-s" in n[10:])


def test_every_govpulse_service_runs_a_real_subcommand_with_options_click_accepts(services):
    project = _govpulse_services(services)
    assert {"topics", "migrate", "streams", "sink", "dashboard", "simulator", "schemas"} <= set(
        project
    )
    for name, service in project.items():
        args = [_interpolate(str(arg)) for arg in service["command"]]
        command: click.Command = main
        while isinstance(command, click.Group):
            assert args and args[0] in command.commands, f"{name}: {args} is not a govpulse command"
            command, args = command.commands[args[0]], args[1:]
        command.make_context(f"govpulse {name}", list(args))  # raises on an unknown option


def test_streams_and_sinks_run_as_several_replicas(services):
    for name in ("streams", "sink"):
        assert int(_interpolate(str(services[name]["deploy"]["replicas"]))) >= 2


def test_every_govpulse_variable_is_a_setting_or_a_documented_option_variable(services):
    settings = {env_name(field) for field in Settings.model_fields}
    known = settings | _option_variables()
    for name, service in services.items():
        allowed = known | (_grafana_variables() if name == "grafana" else set())
        for variable in _environment(service):
            if variable.startswith("GOVPULSE_"):
                assert variable in allowed, f"{name} sets {variable}, which nothing reads"


def test_processes_listen_on_every_interface_inside_their_containers(services):
    for name, service in _govpulse_services(services).items():
        assert _environment(service)["GOVPULSE_BIND_HOST"] == "0.0.0.0", name
    assert services["dashboard"]["command"][1:3] == ["--host", "0.0.0.0"]


def test_every_govpulse_variable_value_is_valid_for_its_setting(services, tmp_path, monkeypatch):
    """The values a container gets pass the same validation as at process start."""
    secret = tmp_path / "password"
    secret.write_text("pw")
    for service in _govpulse_services(services).values():
        values = {
            key: _interpolate(value)
            for key, value in _environment(service).items()
            if key in {env_name(f) for f in Settings.model_fields}
        }
        for key in list(values):
            if key.endswith("_FILE"):
                values[key] = str(secret)  # the secret files exist only inside containers
        for key in os.environ:
            if key.startswith("GOVPULSE_"):
                monkeypatch.delenv(key)
        for key, value in values.items():
            monkeypatch.setenv(key, value)
        Settings()  # raises a ValidationError naming the variable


def test_the_kafka_clients_use_scram_over_tls_with_their_secrets_mounted(services):
    for name, service in _govpulse_services(services).items():
        env = _environment(service)
        assert env["GOVPULSE_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL", name
        if name in ("topics", "streams", "sink", "simulator"):
            mounted = {s if isinstance(s, str) else s["source"] for s in service["secrets"]}
            assert {"kafka_govpulse_password", "kafka_ca"} <= mounted, name
    assert "pseudonym_key" in services["streams"]["secrets"]


def test_no_secret_value_is_written_in_the_compose_file(services):
    secretish = re.compile(r"(PASSWORD|SECRET|TOKEN|_KEY|JAAS)", re.IGNORECASE)
    for name, service in services.items():
        for key, value in _environment(service).items():
            if secretish.search(key) and not key.endswith("FILE"):
                pytest.fail(f"{name}: {key}={value!r} puts a secret in the environment")
    text = COMPOSE.read_text()
    assert "password=" not in text.lower()


# -- files, secrets, variables -------------------------------------------------------------------


def _mounted_sources(services: dict[str, dict[str, Any]]) -> Iterator[tuple[str, str]]:
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0] if isinstance(volume, str) else volume.get("source")
            if source and source.startswith("."):
                yield name, source


def test_every_mounted_project_file_exists(services):
    mounts = list(_mounted_sources(services))
    assert len(mounts) > 10
    for name, source in mounts:
        assert (ROOT / source).exists(), f"{name} mounts {source}, which does not exist"


def test_the_mounted_scripts_are_valid_shell(services):
    for _, source in _mounted_sources(services):
        for script in [ROOT / source] if source.endswith(".sh") else (ROOT / source).glob("*.sh"):
            shell = "bash" if script.read_text().startswith("#!/bin/bash") else "sh"
            result = subprocess.run([shell, "-n", str(script)], capture_output=True, text=True)
            assert result.returncode == 0, f"{script}: {result.stderr}"


def test_every_secret_is_made_by_make_secrets_and_used_by_a_service(compose, services, tmp_path):
    if shutil.which("openssl") is None:
        pytest.fail("deploy/make-secrets.sh needs openssl (Debian package openssl)")
    deploy = tmp_path / "deploy"
    deploy.mkdir()
    shutil.copy(ROOT / "deploy/make-secrets.sh", deploy)
    run = subprocess.run(["bash", str(deploy / "make-secrets.sh")], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    used = {
        s if isinstance(s, str) else s["source"]
        for service in services.values()
        for s in service.get("secrets", [])
    }
    for name, secret in compose["secrets"].items():
        assert secret["file"].startswith("./deploy/secrets/"), name
        assert (tmp_path / secret["file"]).is_file(), f"make-secrets.sh does not make {name}"
        assert name in used, f"secret {name} is declared but no service mounts it"
    assert used <= set(compose["secrets"])
    rerun = subprocess.run(
        ["bash", str(deploy / "make-secrets.sh")], capture_output=True, text=True
    )
    assert "created" not in rerun.stdout  # never overwrites: the HMAC key must stay the same
    assert (ROOT / "deploy/secrets/.gitignore").read_text().splitlines()[1:] == ["*", "!.gitignore"]


def test_every_variable_the_compose_file_uses_is_in_env_example_and_vice_versa():
    used = {m.group(1) for m in VARIABLE.finditer(COMPOSE.read_text())}
    example = set(_env_example())
    assert used - example == set(), "add these to .env.example"
    assert example - used == set(), "these .env.example variables are not used"


def test_named_volumes_and_dependencies_are_declared(compose, services):
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if not source.startswith((".", "/")):
                assert source in compose["volumes"], f"{name}: volume {source} not declared"
        for needed, rule in (service.get("depends_on") or {}).items():
            assert needed in services, f"{name} depends on unknown {needed}"
            other = services[needed]
            if rule["condition"] == "service_healthy":
                assert "healthcheck" in other, f"{name} waits for {needed} healthy: no check"
            if rule["condition"] == "service_completed_successfully":
                assert other.get("restart") == "no", f"{needed} is waited on to finish"
            if "profiles" in other and "profiles" not in service:
                assert rule.get("required") is False, f"{name} needs {needed} of a profile"


def test_third_party_images_are_pinned(services):
    for name, service in services.items():
        image = str(service.get("image", ""))
        if "govpulse" in image:
            continue
        _, _, tag = image.rpartition(":")
        assert tag and tag != "latest" and "/" not in tag, f"{name}: pin {image}"


# -- Prometheus, Kafka, image ------------------------------------------------------------------


def test_prometheus_scrapes_services_on_their_metrics_ports(services):
    config = yaml.safe_load((ROOT / "monitoring/prometheus.compose.yml").read_text())
    component = {"simulator": "simulator", "streams": "streams", "sink": "serve",
                 "dashboard": "dashboard"}  # fmt: skip
    for job in config["scrape_configs"]:
        targets = [t for sc in job.get("static_configs", []) for t in sc["targets"]]
        targets += [
            f"{n}:{sd['port']}" for sd in job.get("dns_sd_configs", []) for n in sd["names"]
        ]
        for target in targets:
            host, port = target.rsplit(":", 1)
            if host == "localhost":
                continue
            assert host in services, f"Prometheus job {job['job_name']} scrapes unknown {host}"
            if host in component:
                assert int(port) == DEFAULT_METRICS_PORTS[component[host]], target
    mounted = [v for v in services["prometheus"]["volumes"] if "alerts.yml" in v]
    assert mounted == ["./monitoring/alerts.yml:/etc/prometheus/alerts.yml:ro"]


def test_kafka_has_three_brokers_for_the_topics_files_replication(services):
    from govpulse.topics import read_topics_file

    brokers = [n for n in services if re.fullmatch(r"kafka-[0-9]+", n)]
    specs = read_topics_file(partitions=12).topics
    assert len(brokers) == 3
    assert all(s.replication_factor == 3 for s in specs)
    assert all(int(s.config["min.insync.replicas"]) == 2 for s in specs)
    servers = _environment(services["streams"])["GOVPULSE_BOOTSTRAP_SERVERS"].split(",")
    assert sorted(s.split(":")[0] for s in servers) == sorted(brokers)


def test_the_image_installs_every_package_and_runs_govpulse_unprivileged():
    dockerfile = (ROOT / "Dockerfile").read_text()
    dockerignore = (ROOT / ".dockerignore").read_text().splitlines()
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11[.0-9]*-slim", dockerfile, re.MULTILINE)
    assert 'ENTRYPOINT ["govpulse"]' in dockerfile
    assert re.search(r"^USER govpulse", dockerfile, re.MULTILINE)
    assert "pip install --no-deps ." in dockerfile
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    for folder in pyproject["tool"]["setuptools"]["package-dir"].values():
        assert f"COPY {folder} ./{folder}" in dockerfile, folder
        assert f"!{folder}/" in dockerignore, folder


# -- docker compose itself ---------------------------------------------------------------------


def _compose_plugin() -> str | None:
    if shutil.which("docker") is None:
        return "the docker client is not installed"
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True)
    if probe.returncode != 0:
        said = (probe.stderr.strip().splitlines() or ["no output"])[0]
        return f"the docker compose plugin is absent (`docker compose version`: {said})"
    return None


def test_docker_compose_config_accepts_the_file():
    missing = _compose_plugin()
    if missing:
        pytest.skip(f"{missing}; the file is checked by the other tests here")
    result = subprocess.run(
        ["docker", "compose", "--env-file", ".env.example", "--profile", "demo",
         "--profile", "replicated", "config", "-q"],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


def test_the_dashboard_reads_clickhouse_as_a_select_only_readonly_user(services):
    dsn = services["dashboard"]["environment"]["GOVPULSE_CLICKHOUSE_DSN"]
    assert dsn.startswith("http://dashboard@"), dsn
    users = (ROOT / "deploy/clickhouse/users.sql").read_text()
    grants = re.findall(r"^GRANT (.+?) ON govpulse\.\* TO dashboard;", users, re.M)
    assert grants == ["SELECT"]
    assert re.search(r"PROFILE IF NOT EXISTS dashboard_profile SETTINGS\s+readonly = 1,", users)
    assert users.count("SETTINGS PROFILE dashboard_profile;") == 2  # CREATE and ALTER USER
