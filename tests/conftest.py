"""Session fixtures: the real broker, registry and ClickHouse engine on free loopback ports.

Started once per test session (a Tansu broker is ready in well under a second, the registry in
about one); tests isolate themselves by topic, subject and table names, not by new servers.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from govpulse.embedded.broker import EmbeddedBroker
from govpulse.embedded.process import free_port
from govpulse.embedded.registry.service import EmbeddedRegistry
from tests.support.pipeline import FAST_GROUPS

# Property tests check what a rule does, not how fast: the 200 ms per-example deadline failed
# them on a busy 2-core machine (a benchmark running beside `make check`).
settings.register_profile("govpulse", deadline=None)
settings.load_profile("govpulse")

# The modules that take longest (20 s to 3 min each on the 2-core machine, mostly waiting on
# a broker, a consumer group or Prometheus), longest first. Under `make test`'s
# `-n 2 --dist loadfile --no-loadscope-reorder` a module runs whole on one xdist worker, in
# collection order: started first, they overlap the many short modules instead of ending the
# run alone (xdist's own reordering, by number of tests, put test_alerting's one test last).
# A serial run keeps the plain order.
LONGEST_FIRST = (
    "tests/sinks/test_sink.py",
    "tests/pipeline/test_alerting.py",
    "tests/pipeline/test_kill_loop.py",
    "tests/streams/test_app.py",
    "tests/pipeline/test_scale_out.py",
    "tests/sinks/test_audit.py",
    "tests/pipeline/test_foreign_producer.py",
    "tests/dashboard/test_dashboard_browser.py",
    "tests/pipeline/test_up.py",
    "tests/producers/test_agency_producer.py",
    "tests/streams/test_streams_scale.py",
    "tests/producers/test_simulator.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not hasattr(config, "workerinput"):  # not an xdist worker: the plain order
        return
    rank = {path: i for i, path in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))


@pytest.fixture(scope="session")
def stack_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory for the test session's embedded stack (logs, registry state)."""
    return tmp_path_factory.mktemp("stack")


@pytest.fixture(scope="session")
def broker(stack_dir: Path) -> Iterator[EmbeddedBroker]:
    """A Tansu broker on a free loopback port; `.bootstrap` is its host:port."""
    instance = EmbeddedBroker("127.0.0.1", free_port(), stack_dir / "logs").start()
    yield instance
    instance.stop()


@pytest.fixture(scope="session")
def registry(stack_dir: Path) -> Iterator[EmbeddedRegistry]:
    """The embedded schema registry on a free loopback port; `.url` is its base URL."""
    instance = EmbeddedRegistry(
        "127.0.0.1", free_port(), stack_dir / "registry", stack_dir / "logs"
    ).start()
    yield instance
    instance.stop()


@pytest.fixture(scope="session")
def clickhouse_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's chdb directory (one per process, by design)."""
    return tmp_path_factory.mktemp("clickhouse")


@pytest.fixture(scope="session")
def clickhouse(clickhouse_dir: Path):
    """A clickhouse-connect client on the session's chdb directory."""
    from govpulse.clickhouse import make_client

    client = make_client(f"chdb://{clickhouse_dir}")
    yield client
    client.close()


@pytest.fixture(scope="session")
def clickhouse_http(clickhouse, clickhouse_dir: Path) -> Iterator[str]:
    """The session's engine offered over ClickHouse's HTTP interface, as `govpulse serve` does."""
    import asyncio
    import threading

    from govpulse.embedded import clickhouse_http as endpoint

    port, loop = free_port(), asyncio.new_event_loop()
    runner = loop.run_until_complete(endpoint.start(str(clickhouse_dir), port))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


@pytest.fixture
def unique_name() -> Callable[[str], str]:
    """Names that do not collide across tests sharing the session's servers."""
    return lambda prefix: f"{prefix}_{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def read_topic() -> Callable[..., list]:
    """Read every message of a topic up to its true end offsets (no consumer group)."""
    from confluent_kafka import Consumer, TopicPartition

    from govpulse.offsets import end_offsets

    def read(
        bootstrap: str, topic: str, timeout: float = 20.0, start: dict[int, int] | None = None
    ) -> list:
        """Messages from `start` (partition → offset; default the beginning) to the end."""
        start = start or {}
        ends = {
            p: end
            for p, (low, end) in end_offsets(bootstrap, topic).items()
            if end > max(low, start.get(p, 0))
        }
        consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "reader", "log_level": 0})
        try:
            consumer.assign([TopicPartition(topic, p, start.get(p, 0)) for p in ends])
            messages, deadline = [], time.monotonic() + timeout
            while ends and time.monotonic() < deadline:
                message = consumer.poll(0.2)
                if message is None or message.error() is not None:
                    continue
                messages.append(message)
                if message.offset() + 1 >= ends.get(message.partition(), 0):
                    ends.pop(message.partition(), None)
            return messages
        finally:
            consumer.close()

    return read


@pytest.fixture(scope="session")
def isolated_pipeline(
    registry,
) -> Iterator[Callable[[Path], tuple[EmbeddedBroker, dict[str, str]]]]:
    """Factory: a broker of one's own and the env for `govpulse` children that use it.

    For modules whose assertions compare topic counts with a simulator's exact report, so no
    other test's records may share the topics. The registry is the session's.
    """
    import os

    started: list[EmbeddedBroker] = []

    def make(workdir: Path) -> tuple[EmbeddedBroker, dict[str, str]]:
        broker = EmbeddedBroker("127.0.0.1", free_port(), workdir / "logs").start()
        started.append(broker)
        key = workdir / "key"
        key.write_bytes(os.urandom(48))
        env = dict(
            os.environ,
            GOVPULSE_DATA_DIR=str(workdir / "data"),
            GOVPULSE_BOOTSTRAP_SERVERS=broker.bootstrap,
            GOVPULSE_REGISTRY_URL=registry.url,
            GOVPULSE_PSEUDONYM_KEY_FILE=str(key),
            GOVPULSE_METRICS_PORT=str(free_port()),
            **FAST_GROUPS,
        )
        return broker, env

    yield make
    for broker in started:
        broker.stop()
