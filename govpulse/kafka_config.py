"""Kafka connection security from settings, for both client libraries the project uses.

librdkafka (confluent-kafka: the producer SDK, stream output, the sink, admin and offset tools)
and aiokafka (Faust's stream input, tables and changelogs) take credentials in different
shapes. Building both from the same `KafkaSecurity` keeps every process on one protocol, user
and CA, and validates them once at start, with messages that name the setting to fix — a wrong
path fails before any connection attempt instead of as a stream of broker timeouts.

The password lives in a file (a Docker secret), never in the environment; it is read here
and handed to the client libraries only, so nothing prints it.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from govpulse.settings import Settings, SettingsError, env_name, get_settings

if TYPE_CHECKING:
    from faust.types.auth import CredentialsT

TLS_PROTOCOLS = frozenset({"SSL", "SASL_SSL"})
SASL_PROTOCOLS = frozenset({"SASL_PLAINTEXT", "SASL_SSL"})


@dataclass(frozen=True)
class KafkaSecurity:
    """A validated protocol, identity and trust anchor; `password` is left out of repr()."""

    protocol: str = "PLAINTEXT"
    mechanism: str = "SCRAM-SHA-512"
    username: str = ""
    password: str = field(default="", repr=False)
    ca_file: Path | None = None

    @property
    def tls(self) -> bool:
        return self.protocol in TLS_PROTOCOLS

    @property
    def sasl(self) -> bool:
        return self.protocol in SASL_PROTOCOLS


def _read_password(path: Path) -> str:
    variable = env_name("kafka_password_file")
    try:
        password = path.read_text(encoding="utf-8").rstrip("\r\n")
    except FileNotFoundError:
        raise SettingsError(f"{variable}={str(path)!r}: no such file") from None
    except OSError as exc:
        raise SettingsError(f"{variable}={str(path)!r}: cannot read it: {exc.strerror}") from None
    if not password:
        raise SettingsError(f"{variable}={str(path)!r}: the file is empty")
    return password


def kafka_security(settings: Settings | None = None) -> KafkaSecurity:
    """Check the GOVPULSE_KAFKA_* settings together; `SettingsError` names what to fix.

    Settings that the chosen protocol would ignore are refused rather than ignored: a user
    name with PLAINTEXT means someone meant SASL and would otherwise send data unprotected.
    """
    settings = settings or get_settings()
    protocol = settings.kafka_security_protocol
    chosen = f"{env_name('kafka_security_protocol')}={protocol}"
    if protocol not in SASL_PROTOCOLS:
        for name in ("kafka_username", "kafka_password_file"):
            if getattr(settings, name):
                raise SettingsError(
                    f"{env_name(name)} is set but {chosen} does not authenticate: use "
                    f"SASL_SSL (or SASL_PLAINTEXT), or unset {env_name(name)}"
                )
    if protocol not in TLS_PROTOCOLS and settings.kafka_ca_file is not None:
        raise SettingsError(
            f"{env_name('kafka_ca_file')} is set but {chosen} does not use TLS: use SSL or "
            f"SASL_SSL, or unset {env_name('kafka_ca_file')}"
        )
    password = ""
    if protocol in SASL_PROTOCOLS:
        if not settings.kafka_username:
            raise SettingsError(f"{chosen} needs {env_name('kafka_username')}")
        if settings.kafka_password_file is None:
            raise SettingsError(
                f"{chosen} needs {env_name('kafka_password_file')}: a file holding the password"
            )
        password = _read_password(settings.kafka_password_file)
    ca_file = settings.kafka_ca_file
    if ca_file is not None and not ca_file.is_file():
        raise SettingsError(f"{env_name('kafka_ca_file')}={str(ca_file)!r}: no such file")
    return KafkaSecurity(
        protocol=protocol,
        mechanism=settings.kafka_sasl_mechanism,
        username=settings.kafka_username,
        password=password,
        ca_file=ca_file,
    )


def librdkafka_config(security: KafkaSecurity) -> dict[str, Any]:
    """The confluent-kafka (librdkafka) properties for `security`; merge into any client config.

    Hostname verification is set explicitly so both libraries check the broker's certificate
    name the same way (Python's ssl always does).
    """
    config: dict[str, Any] = {"security.protocol": security.protocol}
    if security.sasl:
        config.update(
            {
                "sasl.mechanism": security.mechanism,
                "sasl.username": security.username,
                "sasl.password": security.password,
            }
        )
    if security.tls:
        config["ssl.endpoint.identification.algorithm"] = "https"
        if security.ca_file is not None:
            config["ssl.ca.location"] = str(security.ca_file)
    return config


def client_config(settings: Settings | None = None) -> dict[str, Any]:
    """librdkafka security properties for this process's settings (validated)."""
    return librdkafka_config(kafka_security(settings))


def ssl_context(security: KafkaSecurity) -> ssl.SSLContext:
    """A client TLS context trusting GOVPULSE_KAFKA_CA_FILE (else the system CAs)."""
    cafile = str(security.ca_file) if security.ca_file is not None else None
    try:
        return ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cafile)
    except (ssl.SSLError, OSError) as exc:
        raise SettingsError(
            f"{env_name('kafka_ca_file')}={cafile!r}: not a usable PEM CA file: {exc}"
        ) from None


def faust_credentials(settings: Settings | None = None) -> CredentialsT | None:
    """`faust.App(broker_credentials=...)` for this process's settings; None for PLAINTEXT."""
    from faust.auth import SASLCredentials, SSLCredentials

    security = kafka_security(settings)
    context = ssl_context(security) if security.tls else None
    if security.sasl:
        return SASLCredentials(
            username=security.username,
            password=security.password,
            mechanism=security.mechanism,
            ssl_context=context,
        )
    if context is not None:
        return SSLCredentials(context)
    return None
