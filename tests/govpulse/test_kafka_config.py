"""Kafka client security from settings, and the secrets that come with it never being printed.

Both client libraries are asked whether they accept what `govpulse.kafka_config` builds
(librdkafka validates properties when a client is constructed; Faust maps credentials to
aiokafka's arguments), without a broker: a TLS/SASL broker is not part of the embedded stack.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import certifi
import pytest
from click.testing import CliRunner
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient

from govpulse import kafka_config
from govpulse.settings import SettingsError, get_settings, load_settings

CA = Path(certifi.where())  # a real PEM bundle of CA certificates


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    path = tmp_path / "kafka_password"
    path.write_text("s3cret-Pa55\n")
    return path


def _settings(**values: object):
    return load_settings(**values)


def test_plaintext_is_the_default_and_needs_no_credentials():
    settings = _settings()
    assert kafka_config.client_config(settings) == {"security.protocol": "PLAINTEXT"}
    assert kafka_config.faust_credentials(settings) is None


def test_sasl_ssl_gives_librdkafka_scram_over_tls_with_the_ca(password_file):
    settings = _settings(
        kafka_security_protocol="SASL_SSL",
        kafka_username="govpulse",
        kafka_password_file=password_file,
        kafka_ca_file=CA,
    )
    config = kafka_config.client_config(settings)
    assert config == {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "govpulse",
        "sasl.password": "s3cret-Pa55",  # the trailing newline of the file is not part of it
        "ssl.endpoint.identification.algorithm": "https",
        "ssl.ca.location": str(CA),
    }
    # librdkafka checks every property when a client is built (no broker needed).
    Producer({"bootstrap.servers": "127.0.0.1:1", **config})
    AdminClient({"bootstrap.servers": "127.0.0.1:1", **config})


def test_sasl_ssl_gives_faust_scram_credentials_with_a_verifying_tls_context(password_file):
    from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

    settings = _settings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-256",
        kafka_username="govpulse",
        kafka_password_file=password_file,
        kafka_ca_file=CA,
    )
    auth = credentials_to_aiokafka_auth(kafka_config.faust_credentials(settings))
    assert auth["security_protocol"] == "SASL_SSL"
    assert auth["sasl_mechanism"] == "SCRAM-SHA-256"
    assert (auth["sasl_plain_username"], auth["sasl_plain_password"]) == ("govpulse", "s3cret-Pa55")
    context = auth["ssl_context"]
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


def test_sasl_plaintext_has_no_tls_in_either_library(password_file):
    from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

    settings = _settings(
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_username="govpulse",
        kafka_password_file=password_file,
    )
    config = kafka_config.client_config(settings)
    assert config["security.protocol"] == "SASL_PLAINTEXT"
    assert not any(key.startswith("ssl.") for key in config)
    Producer({"bootstrap.servers": "127.0.0.1:1", **config})
    auth = credentials_to_aiokafka_auth(kafka_config.faust_credentials(settings))
    assert (auth["security_protocol"], auth["ssl_context"]) == ("SASL_PLAINTEXT", None)


def test_ssl_alone_encrypts_without_a_user_and_trusts_the_system_cas_by_default():
    from faust.auth import SSLCredentials

    settings = _settings(kafka_security_protocol="SSL")
    config = kafka_config.client_config(settings)
    assert config == {"security.protocol": "SSL", "ssl.endpoint.identification.algorithm": "https"}
    Producer({"bootstrap.servers": "127.0.0.1:1", **config})
    assert isinstance(kafka_config.faust_credentials(settings), SSLCredentials)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (
            {"kafka_security_protocol": "SASL_SSL", "kafka_password_file": "x"},
            "GOVPULSE_KAFKA_SECURITY_PROTOCOL=SASL_SSL needs GOVPULSE_KAFKA_USERNAME",
        ),
        (
            {"kafka_security_protocol": "SASL_SSL", "kafka_username": "u"},
            "GOVPULSE_KAFKA_SECURITY_PROTOCOL=SASL_SSL needs GOVPULSE_KAFKA_PASSWORD_FILE",
        ),
        (
            {"kafka_username": "u"},
            "GOVPULSE_KAFKA_USERNAME is set but GOVPULSE_KAFKA_SECURITY_PROTOCOL=PLAINTEXT",
        ),
        (
            {"kafka_security_protocol": "SASL_PLAINTEXT", "kafka_username": "u",
             "kafka_password_file": "/dev/null", "kafka_ca_file": str(CA)},
            "GOVPULSE_KAFKA_CA_FILE is set but GOVPULSE_KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT",
        ),
    ],
)  # fmt: skip
def test_settings_that_do_not_fit_together_are_named(values, expected):
    with pytest.raises(SettingsError) as error:
        kafka_config.client_config(_settings(**values))
    assert expected in str(error.value)


def test_a_missing_password_file_is_named_with_its_path(tmp_path):
    missing = tmp_path / "nowhere" / "kafka_password"
    settings = _settings(
        kafka_security_protocol="SASL_SSL", kafka_username="u", kafka_password_file=missing
    )
    with pytest.raises(SettingsError) as error:
        kafka_config.client_config(settings)
    assert str(error.value) == f"GOVPULSE_KAFKA_PASSWORD_FILE='{missing}': no such file"


def test_an_empty_password_file_is_refused(tmp_path):
    empty = tmp_path / "kafka_password"
    empty.write_text("\n")
    settings = _settings(
        kafka_security_protocol="SASL_SSL", kafka_username="u", kafka_password_file=empty
    )
    with pytest.raises(SettingsError, match=r"GOVPULSE_KAFKA_PASSWORD_FILE=.*the file is empty"):
        kafka_config.client_config(settings)


def test_a_missing_ca_file_is_named(tmp_path):
    settings = _settings(kafka_security_protocol="SSL", kafka_ca_file=tmp_path / "ca.pem")
    with pytest.raises(SettingsError, match=r"GOVPULSE_KAFKA_CA_FILE='.*ca\.pem': no such file"):
        kafka_config.client_config(settings)


def test_a_ca_file_that_is_not_pem_is_named_before_faust_connects(tmp_path):
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate")
    settings = _settings(kafka_security_protocol="SSL", kafka_ca_file=bad)
    with pytest.raises(SettingsError, match=r"GOVPULSE_KAFKA_CA_FILE=.*not a usable PEM CA file"):
        kafka_config.faust_credentials(settings)


def test_the_password_is_in_no_repr(password_file):
    settings = _settings(
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_username="u",
        kafka_password_file=password_file,
    )
    assert "s3cret" not in repr(kafka_config.kafka_security(settings))
    assert "s3cret" not in repr(kafka_config.faust_credentials(settings))
    assert "s3cret" not in repr(settings)


# -- ClickHouse passwords from a file, and what `govpulse settings` shows ---------------------


def test_a_clickhouse_password_file_completes_the_dsn_quoted(tmp_path):
    secret = tmp_path / "clickhouse_password"
    secret.write_text("p@ss/w:rd\n")
    settings = _settings(
        clickhouse_dsn="http://govpulse_writer@clickhouse:8123/govpulse",
        clickhouse_password_file=secret,
    )
    assert (
        settings.clickhouse_dsn == "http://govpulse_writer:p%40ss%2Fw%3Ard@clickhouse:8123/govpulse"
    )


def test_a_clickhouse_password_file_needs_a_user_in_the_dsn(tmp_path):
    secret = tmp_path / "clickhouse_password"
    secret.write_text("pw")
    with pytest.raises(SettingsError, match="GOVPULSE_CLICKHOUSE_DSN must be http"):
        _settings(clickhouse_dsn="http://clickhouse:8123/db", clickhouse_password_file=secret)


def test_a_missing_clickhouse_password_file_is_named(tmp_path):
    with pytest.raises(SettingsError, match=r"GOVPULSE_CLICKHOUSE_PASSWORD_FILE=.*cannot read"):
        _settings(clickhouse_password_file=tmp_path / "missing")


def test_govpulse_settings_masks_the_clickhouse_password(monkeypatch, tmp_path):
    from govpulse.cli import main

    secret = tmp_path / "clickhouse_password"
    secret.write_text("TopSecret99")
    monkeypatch.setenv("GOVPULSE_CLICKHOUSE_DSN", "http://dashboard@clickhouse:8123/govpulse")
    monkeypatch.setenv("GOVPULSE_CLICKHOUSE_PASSWORD_FILE", str(secret))
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(main, ["settings"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert "TopSecret99" not in result.output
    assert "http://dashboard:***@clickhouse:8123/govpulse" in result.output


def test_a_bad_dsn_with_a_password_is_reported_masked(monkeypatch):
    monkeypatch.setenv("GOVPULSE_CLICKHOUSE_DSN", "mysql://writer:TopSecret99@db/x")
    with pytest.raises(SettingsError) as error:
        load_settings()
    assert "TopSecret99" not in str(error.value)
    assert "GOVPULSE_CLICKHOUSE_DSN='mysql://writer:***@db/x'" in str(error.value)
