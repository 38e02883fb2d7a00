"""Settings from ``GOVPULSE_*`` environment variables, validated once at process start.

Defaults point at the embedded stack on 127.0.0.1, so a newcomer sets nothing; the
production stack changes only these values, never the code (see STYLE.md).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "GOVPULSE_"


class SettingsError(ValueError):
    """A setting has a value the process cannot run with; the message names the variable."""


def _split_host_port(value: str, setting: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isascii() or not port.isdigit():
        raise ValueError(f"expected host:port, got {value!r}")
    number = int(port)
    if not 0 < number < 65536:
        raise ValueError(f"port {number} is outside 1-65535 in {setting}")
    return host, number


class Settings(BaseSettings):
    """Every knob of govpulse. Each field is read from ``GOVPULSE_<FIELD NAME>``."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    data_dir: Path = Field(
        default=Path(".govpulse"),
        description="Where the embedded stack keeps its state (registry, ClickHouse, dev key).",
    )
    bootstrap_servers: str = Field(
        default="127.0.0.1:9092",
        description="Kafka bootstrap servers, host:port[,host:port]. `govpulse up` starts the "
        "embedded broker at the first one.",
    )
    registry_url: str = Field(
        default="http://127.0.0.1:8081",
        description="Schema registry URL. `govpulse up` starts the embedded registry there.",
    )
    clickhouse_dsn: str = Field(
        default="",
        description="ClickHouse DSN: chdb:///path (embedded engine) or http(s)://user:pw@host:8123"
        "/db. Empty means chdb://<data_dir>/clickhouse.",
    )
    kafka_session_timeout_ms: int = Field(
        default=6000,
        ge=1000,
        le=300_000,
        description="Consumer-group session timeout. 6 s makes the first assignment on the "
        "embedded broker take ~3 s instead of ~23 s with librdkafka's 45 s default.",
    )
    producer_max_buffered: int = Field(
        default=200_000,
        ge=1,
        description="Records the producer holds locally while the broker is slow or away.",
    )
    producer_buffer_timeout_s: float = Field(
        default=30.0,
        gt=0,
        description="How long send() waits for room in a full buffer before it raises.",
    )
    producer_delivery_timeout_ms: int = Field(
        default=120_000,
        ge=1000,
        description="A record not acknowledged by the broker within this time is reported failed.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Log level of every govpulse process."
    )
    metrics_port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description="Port of this process's /metrics on 127.0.0.1. Empty: the component's "
        "default (simulate 9101, streams 9102, serve 9103); 0 picks a free port.",
    )
    metrics_port_base: int = Field(
        default=9100,
        ge=1,
        le=65000,
        description="`govpulse up` gives its children /metrics on base+1 (simulate), +2 "
        "(streams), +3 (serve).",
    )
    prometheus_port: int = Field(
        default=9090,
        ge=1,
        le=65535,
        description="Where `govpulse up` starts Prometheus (when Debian's prometheus is there).",
    )
    simulate_rate: float = Field(
        default=200.0,
        ge=0,
        description="Events/s of the simulated agencies `govpulse up` starts; 0 starts none.",
    )
    topic_partitions: int = Field(
        default=4,
        ge=1,
        le=1000,
        description="Partitions of the raw/clean/dlq/dup topics and of the streams' tables; "
        "the upper bound of parallel stream workers.",
    )
    pseudonym_key_file: Path | None = Field(
        default=None,
        description="File holding the secret HMAC key (>= 32 bytes) for pseudonyms. The "
        "streams worker refuses to start without it; `govpulse up` generates a dev key.",
    )
    dedup_window_s: int = Field(
        default=86_400,
        ge=1,
        description="How long an event_id is remembered to drop duplicates (seconds).",
    )
    future_tolerance_s: int = Field(
        default=300,
        ge=0,
        description="How far occurred_at may lie in the future (clock skew) before the record "
        "is dead-lettered as future_timestamp.",
    )
    streams_batch_size: int = Field(
        default=5000, ge=1, description="Records a stream worker processes per batch at most."
    )
    streams_batch_ms: int = Field(
        default=50,
        ge=1,
        description="How long a stream worker waits to fill a batch before processing it (ms).",
    )

    @field_validator("bootstrap_servers")
    @classmethod
    def _check_bootstrap(cls, value: str) -> str:
        servers = [part.strip() for part in value.split(",") if part.strip()]
        if not servers:
            raise ValueError("expected at least one host:port")
        for server in servers:
            _split_host_port(server, "bootstrap_servers")
        return ",".join(servers)

    @field_validator("registry_url")
    @classmethod
    def _check_registry_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"expected an http(s):// URL, got {value!r}")
        return value.rstrip("/")

    @field_validator("clickhouse_dsn")
    @classmethod
    def _check_dsn(cls, value: str) -> str:
        if value and urlsplit(value).scheme not in ("chdb", "http", "https"):
            raise ValueError(f"expected chdb:///path or http(s)://host:port, got {value!r}")
        return value

    @field_validator("pseudonym_key_file", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @model_validator(mode="after")
    def _resolve_paths(self) -> Settings:
        object.__setattr__(self, "data_dir", self.data_dir.expanduser().resolve())
        if not self.clickhouse_dsn:
            object.__setattr__(self, "clickhouse_dsn", f"chdb://{self.data_dir / 'clickhouse'}")
        return self

    @property
    def broker_address(self) -> tuple[str, int]:
        """Host and port of the first bootstrap server (where the embedded broker listens)."""
        return _split_host_port(self.bootstrap_servers.split(",")[0], "bootstrap_servers")

    @property
    def registry_address(self) -> tuple[str, int]:
        parts = urlsplit(self.registry_url)
        return parts.hostname or "127.0.0.1", parts.port or (443 if parts.scheme == "https" else 80)


def env_name(field: str) -> str:
    return f"{ENV_PREFIX}{field.upper()}"


def load_settings(**overrides: object) -> Settings:
    """Read and validate settings; raise `SettingsError` naming every bad variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = ".".join(str(part) for part in error["loc"]) or "settings"
            given = error.get("input")
            problems.append(f"{env_name(field)}={given!r}: {error['msg']}")
        raise SettingsError("invalid configuration:\n  " + "\n  ".join(problems)) from None


@cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return load_settings()
