"""A throw-away embedded broker and registry on free loopback ports, for benchmarks."""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import re
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from govpulse.embedded.broker import EmbeddedBroker
from govpulse.embedded.process import free_port
from govpulse.embedded.registry.service import EmbeddedRegistry

REPO = Path(__file__).resolve().parent.parent
# The peers (bench/peer_quix*.py) run in their own virtual environment: Quix Streams pins an
# older confluent-kafka and pydantic-settings than ours, so it cannot join .venv.
QUIXSTREAMS = "3.28.1"  # also bench.peer_quix.QUIXSTREAMS_VERSION
PEER_VENV = REPO / ".govpulse" / "bench" / f"quixstreams-{QUIXSTREAMS}"


def peer_python(*ours: str) -> Path:
    """The peer venv's python, with quixstreams pinned and fastavro plus `ours` at the
    versions installed here (the same engine and codecs on both sides of a comparison).

    Created on first use and completed when a caller needs more; `.installed` lists the pins.
    """
    python, ready = PEER_VENV / "bin" / "python", PEER_VENV / ".installed"
    have = ready.read_text().split() if ready.exists() else []
    pins = dict(pin.partition("==")[::2] for pin in have)  # name → version
    wanted = {"quixstreams": QUIXSTREAMS}
    wanted |= {name: importlib.metadata.version(name) for name in ("fastavro", *ours)}
    if python.exists() and wanted.items() <= pins.items():
        return python
    pins |= wanted
    requirements = sorted(f"{name}=={version}" for name, version in pins.items())
    print(f"bench: installing {' '.join(requirements)} into {PEER_VENV}", file=sys.stderr)
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(PEER_VENV)], check=True)
    pip = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *requirements],
        capture_output=True,
        text=True,
    )
    if pip.returncode:
        sys.exit(f"bench: pip failed in {PEER_VENV}:\n{pip.stdout}{pip.stderr}")
    ready.write_text(" ".join(requirements) + "\n")
    return python


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


def positive(text: str) -> float:
    """argparse type: a number above zero."""
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not positive")
    return value


def _interrupt(*_: Any) -> None:
    raise KeyboardInterrupt


def interrupt_on_signals() -> None:
    """SIGINT and SIGTERM raise KeyboardInterrupt, so a long bench ends its processes.

    SIGINT too: a shell may start a background job with it ignored.
    """
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _interrupt)


def _pattern(text: str) -> str:
    try:
        re.compile(text)
    except re.error as error:
        raise argparse.ArgumentTypeError(f"{text!r} is not a regular expression: {error}") from None
    return text


def _table_setting(text: str) -> tuple[str, str]:
    """`[REGEX:]name = value` → (tables regex, setting); every MergeTree table without REGEX."""
    tables, _, setting = text.rpartition(":")
    if "=" not in setting:
        raise argparse.ArgumentTypeError(f"{text!r}: expected [REGEX:]name = value")
    return _pattern(tables or "."), setting


def add_what_if_options(parser: argparse.ArgumentParser) -> None:
    """Options to try a change of the data model on the benchmark's fresh store."""
    parser.add_argument(
        "--drop-views", metavar="REGEX", type=_pattern, help="drop matching views first"
    )
    parser.add_argument(
        "--table-setting",
        action="append",
        default=[],
        type=_table_setting,
        metavar="[REGEX:]SETTING",
        help="ALTER TABLE … MODIFY SETTING on matching MergeTree tables (all without REGEX)",
    )
    parser.add_argument(
        "--insert-setting",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a query setting added to every clean insert of the sink (e.g. max_threads=1)",
    )


def apply_what_if(client: Any, args: argparse.Namespace) -> list[str]:
    """Drop the views and change the table settings `add_what_if_options` asked for."""
    changed = []
    rows = client.query(
        "SELECT name, engine FROM system.tables WHERE database = currentDatabase()"
    ).result_rows
    if args.drop_views:
        pattern = re.compile(args.drop_views)
        for name, engine in rows:
            if engine == "MaterializedView" and pattern.search(name):
                client.command(f"DROP VIEW {name}")
                changed.append(f"dropped {name}")
    for setting in args.insert_setting:
        name, _, value = setting.partition("=")
        from govpulse.sinks import store

        store._INSERT_SETTINGS[name.strip()] = value.strip()
        changed.append(f"insert setting {name.strip()}={value.strip()}")
    for tables, setting in args.table_setting:
        pattern = re.compile(tables)
        for name, engine in rows:
            if engine.endswith("MergeTree") and pattern.search(name):
                client.command(f"ALTER TABLE {name} MODIFY SETTING {setting}")
                changed.append(f"{name}: {setting}")
    return changed
