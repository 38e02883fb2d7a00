"""A throw-away embedded broker and registry on free loopback ports, for benchmarks."""

from __future__ import annotations

import contextlib
import resource
import tempfile
from collections.abc import Iterator
from pathlib import Path

from embedded.broker import EmbeddedBroker
from embedded.process import free_port
from embedded.registry.service import EmbeddedRegistry


@contextlib.contextmanager
def embedded_stack() -> Iterator[tuple[EmbeddedBroker, EmbeddedRegistry]]:
    with tempfile.TemporaryDirectory(prefix="govpulse-bench-") as folder:
        root = Path(folder)
        broker = EmbeddedBroker("127.0.0.1", free_port(), root / "logs").start()
        try:
            registry = EmbeddedRegistry(
                "127.0.0.1", free_port(), root / "registry", root / "logs"
            ).start()
            try:
                yield broker, registry
            finally:
                registry.stop()
        finally:
            broker.stop()


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
