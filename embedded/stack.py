"""`govpulse up`: start the embedded stack's services in order, watch them, stop them all."""

from __future__ import annotations

import fcntl
import os
import signal
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol

from govpulse.clickhouse import chdb_directory
from govpulse.embedded.broker import EmbeddedBroker
from govpulse.embedded.pipeline import EmbeddedPrometheus, GovpulseCommand, metrics_port
from govpulse.embedded.process import ManagedProcess, ServiceError, StartAborted
from govpulse.embedded.registry.service import EmbeddedRegistry
from govpulse.serve import SINK_STOP_TIMEOUT_S
from govpulse.settings import Settings, SettingsError
from govpulse.streams.keys import ensure_dev_key

LOOPBACK = {"127.0.0.1", "localhost"}  # IPv4: the services and their port checks


class Service(Protocol):
    process: ManagedProcess

    def start(self) -> object: ...
    def stop(self) -> int | None: ...


@dataclass
class Stack:
    """Services started in list order and stopped in reverse; a dead child stops the stack."""

    services: list[tuple[str, Service]] = field(default_factory=list)
    started: list[tuple[str, Service]] = field(default_factory=list)

    def start(self, echo=print, stop: threading.Event | None = None) -> None:
        try:
            for address, service in self.services:
                service.process.abort = stop
                if stop is not None and stop.is_set():
                    raise StartAborted("stopped during start-up")
                service.start()
                self.started.append((address, service))
                echo(f"  {service.process.name:<22} {address}  (pid {service.process.pid})")
        except BaseException:
            self.stop()
            raise

    def first_dead(self) -> ManagedProcess | None:
        for _, service in self.started:
            if not service.process.running():
                return service.process
        return None

    def stop(self) -> None:
        while self.started:
            _, service = self.started.pop()
            service.stop()


def embedded_stack(settings: Settings) -> Stack:
    """The services `govpulse up` runs for these settings (addresses come from the settings)."""
    broker_host, broker_port = settings.broker_address
    registry_host, registry_port = settings.registry_address
    for name, host in (
        ("GOVPULSE_BOOTSTRAP_SERVERS", broker_host),
        ("GOVPULSE_REGISTRY_URL", registry_host),
    ):
        if host not in LOOPBACK:
            raise SettingsError(
                f"{name} points at {host!r}: `govpulse up` starts the embedded stack on "
                "loopback only; against remote services run the single commands instead"
            )
    logs = settings.data_dir / "logs"
    key_file = settings.pseudonym_key_file or ensure_dev_key(settings.data_dir)
    services: list[tuple[str, Service]] = [
        (settings.bootstrap_servers, EmbeddedBroker(broker_host, broker_port, logs)),
        (
            settings.registry_url,
            EmbeddedRegistry(registry_host, registry_port, settings.data_dir / "registry", logs),
        ),
        (
            f"metrics http://127.0.0.1:{metrics_port(settings, 'streams')}/metrics",
            GovpulseCommand(
                "streams worker",
                "streams",
                ["streams"],
                settings,
                {"GOVPULSE_PSEUDONYM_KEY_FILE": str(key_file)},
            ),
        ),
        (
            f"http://127.0.0.1:{settings.dashboard_port}  (dashboard)"
            + (
                f", http://127.0.0.1:{settings.clickhouse_http_port}  (ClickHouse HTTP)"
                if settings.clickhouse_http_port and chdb_directory(settings.clickhouse_dsn)
                else ""
            ),
            GovpulseCommand(
                "sink + dashboard",
                "serve",
                ["serve"],
                settings,
                {},
                grace=SINK_STOP_TIMEOUT_S + 10,  # the sink's last flush and commit
            ),
        ),
    ]
    prometheus = EmbeddedPrometheus.binary()
    if prometheus:
        services.append(
            (
                f"http://127.0.0.1:{settings.prometheus_port}",
                EmbeddedPrometheus(settings, prometheus),
            )
        )
    if settings.simulate_rate > 0:
        services.append(
            (
                f"{settings.simulate_rate:g} events/s (GOVPULSE_SIMULATE_RATE)",
                GovpulseCommand(
                    "simulated agencies",
                    "simulator",
                    ["simulate", "--rate", str(settings.simulate_rate)],
                    settings,
                    {},
                ),
            )
        )
    return Stack(services)


def hold_data_dir(data_dir: Path) -> IO[str]:
    """An exclusive lock on `data_dir` for this `govpulse up`, held while the file stays open.

    A second `up` on the same directory would start a broker, registry and worker before its
    `serve` failed on the store's lock, rewriting the first one's Prometheus config and
    writing into its logs meanwhile.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    lock = open(data_dir / "up.lock", "a+")  # noqa: SIM115 - held for the process's life
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        holder = lock.read().strip() or "?"
        lock.close()
        raise ServiceError(
            f"another `govpulse up` (pid {holder}) runs on {data_dir}; stop it, or give this "
            "one its own GOVPULSE_DATA_DIR (and ports)"
        ) from None
    lock.seek(0)
    lock.truncate()
    lock.write(str(os.getpid()))
    lock.flush()
    return lock


def run_until_signalled(stack: Stack, echo=print) -> int:
    """Start `stack`, block until SIGINT/SIGTERM or a child dies, stop everything. Exit code."""
    stop = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        stack.start(echo, stop)
        echo("govpulse is up. Ctrl-C stops everything.")
        dead: ManagedProcess | None = None
        while not stop.wait(0.5):
            dead = stack.first_dead()
            if dead:
                echo(f"{dead.name} exited unexpectedly; see {dead.log_path}:\n{dead.tail()}")
                break
        echo("stopping …")
        return 1 if dead else 0
    except StartAborted:
        echo("stopping …")
        return 0
    except ServiceError as exc:
        echo(f"error: {exc}")
        return 1
    finally:
        stack.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        echo("stopped.")
