"""Settings from ``GOVPULSE_*`` environment variables, validated once at process start.

Defaults point at the embedded stack on 127.0.0.1, so a newcomer sets nothing; the
production stack (docker-compose.yml) changes only these values, never the code.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, urlsplit, urlunsplit

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
    producer_check_rules: bool = Field(
        default=True,
        description="AgencyProducer.send() gives the stream worker's verdict (raises naming "
        "the field and the dead-letter reason) instead of sending a record the worker would "
        "dead-letter; false for bulk back-fills (~20 µs a record).",
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
    sink_max_rows: int = Field(
        default=100_000,
        ge=1,
        le=1_000_000,
        description="Records the sink holds (all partitions) before an insert cycle starts.",
    )
    sink_max_wait_ms: int = Field(
        default=100,
        ge=1,
        description="Longest a record waits in the sink for its insert cycle (ms).",
    )
    sink_insert_threads: int = Field(
        default=4,
        ge=1,
        le=16,
        description="ClickHouse connections a sink inserts on concurrently (one table each "
        "per cycle): the cycle takes as long as its slowest table, not the sum of all.",
    )
    tier_interval_seconds: float = Field(
        default=10.0,
        ge=0,
        description="How often the sink's tier job merges closed hours (and hours late events "
        "reached) from the minute tier into the hour and day rollups; 0: this sink runs "
        "none (another process does). The day and week views read the open hour from the "
        "minute tier, so this only bounds how long late events take to reach them.",
    )
    raw_ttl_days: int = Field(
        default=400,
        ge=1,
        description="Retention of the events_* tables (days), by occurred_at. Stream workers "
        "dead-letter older events as outside_retention (stored, the TTL would delete them at "
        "once while the rollups kept counting them); the audit excludes events that aged out "
        "after they were stored.",
    )
    dead_letter_ttl_days: int = Field(
        default=30, ge=1, description="Retention of the dead_letters table (days)."
    )
    dashboard_port: int = Field(
        default=8088,
        ge=0,
        le=65535,
        description="Port of the dashboard served by `govpulse serve` / `govpulse dashboard`.",
    )
    clickhouse_http_port: int = Field(
        default=8123,
        ge=0,
        le=65535,
        description="Port where `govpulse serve` offers its embedded ClickHouse engine over "
        "ClickHouse's HTTP interface (127.0.0.1; more sinks, audit, curl); 0 = off. "
        "Only with a chdb DSN.",
    )
    dashboard_clickhouse_dsn: str = Field(
        default="",
        description="The dashboard's ClickHouse DSN (a read-only user in server mode). Empty "
        "means GOVPULSE_CLICKHOUSE_DSN.",
    )
    dashboard_max_queued: int = Field(
        default=64,
        ge=1,
        le=10_000,
        description="Dashboard computations that may wait for ClickHouse; one more is refused "
        "at once (503 + Retry-After) instead of queueing.",
    )
    dashboard_max_wait_seconds: float = Field(
        default=10.0,
        gt=0,
        le=60,
        description="A dashboard computation that waited this long is dropped before it runs "
        "(its viewer has most likely given up) and answered 503.",
    )
    dashboard_max_subscribers: int = Field(
        default=500,
        ge=0,
        le=100_000,
        description="Pages that may hold the dashboard's push stream; more are refused and "
        "poll instead (each holds one socket).",
    )
    dashboard_query_nice: int = Field(
        default=0,
        ge=0,
        le=19,
        description="Niceness of the ClickHouse threads running dashboard queries "
        "(os_thread_priority): on a busy machine the kernel runs the sink's and the stream "
        "workers' threads first; 0 = not niced.",
    )
    dashboard_query_threads: int = Field(
        default=1,
        ge=0,
        le=64,
        description="ClickHouse threads per dashboard query (max_threads), so the sink and "
        "the stream workers keep the other cores; 0 = the engine's default.",
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
    streams_app_id: str = Field(
        default="govpulse-streams",
        pattern=r"^[A-Za-z0-9._-]+$",
        description="Faust app id of the stream workers: their consumer group and the prefix of "
        "their changelog topics. A new id re-reads raw.<type> from the start (a replay).",
    )
    bind_host: str = Field(
        default="127.0.0.1",
        min_length=1,
        description="Address this process's HTTP servers (/metrics) listen on; 0.0.0.0 inside a "
        "container, so Prometheus on another container can scrape it.",
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT",
        description="How every Kafka client connects: PLAINTEXT (embedded broker), SSL, "
        "SASL_PLAINTEXT or SASL_SSL (production: SCRAM over TLS).",
    )
    kafka_sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] = Field(
        default="SCRAM-SHA-512",
        description="SASL mechanism when the protocol is SASL_*.",
    )
    kafka_username: str = Field(
        default="", description="SASL user name of this process (protocol SASL_*)."
    )
    kafka_password_file: Path | None = Field(
        default=None,
        description="File holding the SASL password (a Docker secret); the password is never "
        "taken from the environment.",
    )
    kafka_ca_file: Path | None = Field(
        default=None,
        description="PEM file of the CA that signed the brokers' certificates (protocol SSL or "
        "SASL_SSL). Empty: the system's trusted CAs.",
    )
    clickhouse_password_file: Path | None = Field(
        default=None,
        description="File holding the password of the user in an http(s) GOVPULSE_CLICKHOUSE_DSN "
        "(a Docker secret), so the DSN itself carries none.",
    )
    clickhouse_replicated: bool = Field(
        default=False,
        description="Migrations create Replicated*MergeTree tables (ClickHouse Keeper needed).",
    )
    clickhouse_cluster: str = Field(
        default="",
        pattern=r"^([A-Za-z_][A-Za-z0-9_]*)?$",
        description="ClickHouse cluster name: migrations run ON CLUSTER, with shard-local "
        "<table>_local tables behind Distributed <table> tables. Empty: one server.",
    )
    topics_file: Path | None = Field(
        default=None,
        description="Declarative topics file of `govpulse topics apply`. Empty: the packaged "
        "govpulse/topics.yml.",
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

    @field_validator(
        "pseudonym_key_file",
        "kafka_password_file",
        "kafka_ca_file",
        "clickhouse_password_file",
        "topics_file",
        mode="before",
    )
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("clickhouse_password_file")
    @classmethod
    def _check_password_file(cls, value: Path | None) -> Path | None:
        if value is not None:
            _read_secret(value)
        return value

    @model_validator(mode="after")
    def _add_clickhouse_password(self) -> Settings:
        """Put the password file's content into an http(s) DSN, where clickhouse-connect reads it.

        The DSN is then a secret: `govpulse settings` and errors show it through `shown()`.
        """
        if self.clickhouse_password_file is None:
            return self
        parts = urlsplit(self.clickhouse_dsn)
        if parts.scheme not in ("http", "https") or not parts.username:
            raise ValueError(
                f"{env_name('clickhouse_password_file')} is set, so "
                f"{env_name('clickhouse_dsn')} must be http(s)://user@host:port/db naming the "
                f"user, got {shown('clickhouse_dsn', self.clickhouse_dsn)!r}"
            )
        if parts.password:
            raise ValueError(
                f"{env_name('clickhouse_dsn')} carries a password and "
                f"{env_name('clickhouse_password_file')} is set: keep the password in the file only"
            )
        password = quote(_read_secret(self.clickhouse_password_file), safe="")
        netloc = f"{parts.username}:{password}@{parts.netloc.rpartition('@')[2]}"
        object.__setattr__(self, "clickhouse_dsn", urlunsplit(parts._replace(netloc=netloc)))
        return self

    @model_validator(mode="after")
    def _check_cluster(self) -> Settings:
        if self.clickhouse_cluster and not self.clickhouse_replicated:
            raise ValueError(
                f"{env_name('clickhouse_cluster')}={self.clickhouse_cluster!r} needs "
                f"{env_name('clickhouse_replicated')}=true: the migrations record and the sink's "
                "in-flight ranges must be one shared table, not one per node"
            )
        return self

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


def _read_secret(path: Path) -> str:
    """The content of a secret file without its trailing newline; ValueError if unusable."""
    try:
        value = path.read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not value:
        raise ValueError(f"{path} is empty")
    return value


def shown(field: str, value: object) -> str:
    """How a setting may be printed: passwords inside URLs become ***, nothing else is secret.

    Secrets live in files (`*_file` settings hold paths, which are safe to show); the one
    setting that carries a secret in its value is a DSN with the password file applied.
    """
    text = "(unset)" if value is None else str(value)
    if field.endswith("dsn") or "://" in text:
        try:
            parts = urlsplit(text)
            password = parts.password
        except ValueError:
            return text
        if password:
            netloc = parts.netloc.replace(f":{password}@", ":***@", 1)
            text = urlunsplit(parts._replace(netloc=netloc))
    return text


def load_settings(**overrides: Any) -> Settings:
    """Read and validate settings; raise `SettingsError` naming every bad variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = ".".join(str(part) for part in error["loc"])
            if not field:  # a check across settings: its message names them
                problems.append(error["msg"].removeprefix("Value error, "))
                continue
            given, message = error.get("input"), error["msg"]
            if isinstance(given, str):  # a DSN's password stays out of the message
                given, message = shown(field, given), message.replace(given, shown(field, given))
            problems.append(f"{env_name(field)}={given!r}: {message}")
        raise SettingsError("invalid configuration:\n  " + "\n  ".join(problems)) from None


@cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return load_settings()
