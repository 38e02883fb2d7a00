"""The floors of the house: every import of a shipped module points down or sideways, no cycle.

The floors are declared here and only here (README "Architecture" draws them). A module
belongs to the floor of the longest prefix that names it. A module may import its own floor
and the floors below; among the stages, a package imports no other stage. Imports inside
functions count: a lazy import is still an arrow.
"""

from __future__ import annotations

import ast
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

FOUNDATION, CONTRACTS, RECORD_RULES, STAGES, COMMANDS = range(5)
FLOOR_NAMES = ["foundation", "contracts and codecs", "record rules", "stages", "commands"]

FLOORS: dict[str, int] = {
    # settings, clients of Kafka, ClickHouse and the registry, logs, metrics, child processes
    "govpulse": FOUNDATION,
    "govpulse.settings": FOUNDATION,
    "govpulse.logs": FOUNDATION,
    "govpulse.kafka_config": FOUNDATION,
    "govpulse.clickhouse": FOUNDATION,
    "govpulse.registry": FOUNDATION,
    "govpulse.offsets": FOUNDATION,
    "govpulse.monitoring": FOUNDATION,
    "govpulse.embedded": FOUNDATION,
    "govpulse.embedded.process": FOUNDATION,
    "govpulse.embedded.broker": FOUNDATION,
    # the Avro contracts, reference data, the wire format, the topic plan derived from them
    "govpulse.schemas": CONTRACTS,
    "govpulse.topics": CONTRACTS,
    # the pure record transform: what the worker does to a record and the SDK's verdict
    "govpulse.streams.rules": RECORD_RULES,
    "govpulse.streams.transform": RECORD_RULES,
    "govpulse.streams.decode": RECORD_RULES,
    "govpulse.streams.clean": RECORD_RULES,
    "govpulse.streams.validate": RECORD_RULES,
    "govpulse.streams.pii": RECORD_RULES,
    "govpulse.streams.enrich": RECORD_RULES,
    "govpulse.streams.encode": RECORD_RULES,
    "govpulse.streams.reasons": RECORD_RULES,
    "govpulse.streams.keys": RECORD_RULES,
    # the stages, beside each other
    "govpulse.producers": STAGES,
    "govpulse.streams": STAGES,
    "govpulse.sinks": STAGES,
    "govpulse.dashboard": STAGES,
    "govpulse.embedded.registry": STAGES,
    "govpulse.embedded.clickhouse_http": STAGES,
    # the commands: `govpulse …`, `serve`, `up`
    "govpulse.__main__": COMMANDS,
    "govpulse.cli": COMMANDS,
    "govpulse.commands": COMMANDS,
    "govpulse.serve": COMMANDS,
    "govpulse.embedded.stack": COMMANDS,
    "govpulse.embedded.pipeline": COMMANDS,
}
OLD_TOP_LEVEL = {"streams", "producers", "schemas", "sinks", "monitoring", "dashboard", "embedded"}


def package_folders() -> dict[str, Path]:
    """Every package under pyproject's package-dir roots (a folder with an __init__.py)."""
    mapping = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    found: dict[str, Path] = {}
    for package, folder in mapping["package-dir"].items():
        for init in sorted((ROOT / folder).rglob("__init__.py")):
            parts = init.parent.relative_to(ROOT / folder).parts
            found[".".join((package, *parts))] = init.parent
    return found


def shipped_modules() -> dict[str, Path]:
    """Every module the wheel installs, by its dotted name: the packages pyproject lists."""
    mapping = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders = package_folders()
    modules: dict[str, Path] = {}
    for package in mapping["packages"]:
        modules[package] = folders[package] / "__init__.py"
        for path in sorted(folders[package].glob("*.py")):
            if path.name != "__init__.py":
                modules[f"{package}.{path.stem}"] = path
    return modules


def test_the_wheel_lists_every_package_folder():
    """setuptools installs only the packages pyproject names: a folder left out is missing
    from `pip install .` (and the image) while the editable install still finds it."""
    listed = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert sorted(package_folders()) == sorted(listed["packages"])


MODULES = shipped_modules()


def imports_of(name: str, path: Path) -> set[str]:
    """Modules `path` imports, absolute, resolved to shipped modules where they are ones."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base]) if base else ".".join(anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {
        module for module in found if module in MODULES or module.split(".")[0] in OLD_TOP_LEVEL
    }


def floor_of(name: str) -> int:
    for prefix in sorted(FLOORS, key=len, reverse=True):
        if name == prefix or name.startswith(prefix + "."):
            return FLOORS[prefix]
    raise AssertionError(f"{name} is on no floor: add it to FLOORS in {Path(__file__).name}")


def stage_of(name: str) -> str:
    return ".".join(name.split(".")[:2])


GRAPH = {name: imports_of(name, path) for name, path in MODULES.items()}


def test_every_shipped_module_is_on_a_floor():
    assert len(MODULES) > 80
    for name in MODULES:
        floor_of(name)


def test_no_module_imports_the_folders_by_their_old_top_level_names():
    stale = {name: sorted(m for m in imported if m.split(".")[0] in OLD_TOP_LEVEL)
             for name, imported in GRAPH.items()}  # fmt: skip
    assert {name: found for name, found in stale.items() if found} == {}


def broken_floors(graph: dict[str, set[str]]) -> list[str]:
    """Arrows from a lower floor to a higher one, and from one stage to another."""
    wrong = []
    for name, imported in graph.items():
        for target in imported:
            if target not in graph:
                continue
            mine, theirs = floor_of(name), floor_of(target)
            if theirs > mine:
                wrong.append(f"{name} ({FLOOR_NAMES[mine]}) → {target} ({FLOOR_NAMES[theirs]})")
            elif mine == theirs == STAGES and stage_of(name) != stage_of(target):
                wrong.append(f"{name} → {target}: one stage imports another")
    return sorted(wrong)


def cycles_in(graph: dict[str, set[str]]) -> list[list[str]]:
    """Import cycles among modules (a package's __init__ importing its own children is none)."""
    edges = {
        name: {t for t in imported if t in graph and not name.startswith(t + ".")}
        for name, imported in graph.items()
    }
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for target in sorted(edges[node]):
            if state.get(target) == 1:
                cycles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target, [*path, target])
        state[node] = 2

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 5000))
    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    return cycles


def test_imports_point_down_and_stages_do_not_import_each_other():
    assert broken_floors(GRAPH) == []


def test_the_commands_are_imported_by_no_other_floor():
    commands = {name for name in MODULES if floor_of(name) == COMMANDS}
    importers = {
        name: sorted(imported & commands)
        for name, imported in GRAPH.items()
        if floor_of(name) != COMMANDS and imported & commands
    }
    assert importers == {}


def test_no_import_cycle():
    assert cycles_in(GRAPH) == []


def test_the_checks_catch_an_upward_arrow_a_sideways_arrow_and_a_cycle():
    graph = {
        "govpulse.settings": {"govpulse.cli"},
        "govpulse.cli": {"govpulse.settings"},
        "govpulse.sinks.sink": {"govpulse.streams.app", "govpulse.schemas.catalog"},
        "govpulse.streams.app": set(),
        "govpulse.schemas.catalog": set(),
    }
    assert broken_floors(graph) == [
        "govpulse.settings (foundation) → govpulse.cli (commands)",
        "govpulse.sinks.sink → govpulse.streams.app: one stage imports another",
    ]
    assert cycles_in(graph) == [["govpulse.cli", "govpulse.settings", "govpulse.cli"]]
