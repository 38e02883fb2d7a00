"""Settings: defaults point at the embedded stack, bad values are named at start."""

from __future__ import annotations

import pytest

from govpulse.settings import SettingsError, load_settings


def test_defaults_point_at_the_embedded_stack_on_loopback(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    settings = load_settings()
    assert settings.broker_address == ("127.0.0.1", 9092)
    assert settings.registry_address == ("127.0.0.1", 8081)
    assert settings.clickhouse_dsn == f"chdb://{tmp_path.resolve() / '.govpulse' / 'clickhouse'}"


def test_a_server_dsn_is_kept_as_given(monkeypatch):
    monkeypatch.setenv("GOVPULSE_CLICKHOUSE_DSN", "http://writer:pw@ch:8123/govpulse")
    assert load_settings().clickhouse_dsn == "http://writer:pw@ch:8123/govpulse"


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("GOVPULSE_BOOTSTRAP_SERVERS", "kafka-without-port", "expected host:port"),
        ("GOVPULSE_BOOTSTRAP_SERVERS", "k:99999", "outside 1-65535"),
        ("GOVPULSE_REGISTRY_URL", "registry:8081", "http"),
        ("GOVPULSE_CLICKHOUSE_DSN", "mysql://x", "chdb:///path"),
        ("GOVPULSE_KAFKA_SESSION_TIMEOUT_MS", "soon", "valid integer"),
        ("GOVPULSE_LOG_LEVEL", "LOUD", "DEBUG"),
        ("GOVPULSE_CLICKHOUSE_CLUSTER", "govpulse", "GOVPULSE_CLICKHOUSE_REPLICATED=true"),
    ],
)
def test_a_bad_value_names_its_variable(monkeypatch, variable, value, expected):
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as error:
        load_settings()
    assert variable in str(error.value)
    assert expected in str(error.value)


def test_bootstrap_list_is_normalised():
    settings = load_settings(bootstrap_servers=" a:1 , b:2 ,")
    assert settings.bootstrap_servers == "a:1,b:2"
    assert settings.broker_address == ("a", 1)


def test_the_readme_documents_every_setting():
    from pathlib import Path

    from govpulse.settings import Settings, env_name

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    undocumented = [env_name(n) for n in Settings.model_fields if env_name(n) not in readme]
    assert undocumented == []
