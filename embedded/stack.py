"""`govpulse up`: start the embedded stack's services in order, watch them, stop them all."""

from __future__ import annotations

import signal
import threading
from dataclasses import dataclass, field
from typing import Protocol

from embedded.broker import EmbeddedBroker
from embedded.pipeline import EmbeddedPrometheus, GovpulseCommand, metrics_port
from embedded.process import ManagedProcess, ServiceError
from embedded.registry.service import EmbeddedRegistry
from govpulse.clickhouse import chdb_directory
from govpulse.settings import Settings, SettingsError
from streams.keys import ensure_dev_key

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


class Service(Protocol):
    process: ManagedProcess

    def start(self) -> object: ...
    def stop(self) -> int | None: ...


@dataclass
class Stack:
    """Services started in list order and stopped in reverse; a dead child stops the stack."""

    services: list[tuple[str, Service]] = field(default_factory=list)
    started: list[tuple[str, Service]] = field(default_factory=list)

    def start(self, echo=print) -> None:
        try:
            for address, service in self.services:
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
            GovpulseCommand("sink + dashboard", "serve", ["serve"], settings, {}),
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


def run_until_signalled(stack: Stack, echo=print) -> int:
    """Start `stack`, block until SIGINT/SIGTERM or a child dies, stop everything. Exit code."""
    stop = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        stack.start(echo)
        echo("govpulse is up. Ctrl-C stops everything.")
        dead: ManagedProcess | None = None
        while not stop.wait(0.5):
            dead = stack.first_dead()
            if dead:
                echo(f"{dead.name} exited unexpectedly; see {dead.log_path}:\n{dead.tail()}")
                break
        echo("stopping …")
        return 1 if dead else 0
    except ServiceError as exc:
        echo(f"error: {exc}")
        return 1
    finally:
        stack.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        echo("stopped.")
