"""Run mypy over the installed package layout: `python .ci/typecheck.py [mypy args]`.

The repository keeps its folders at the top (`streams/clean.py`) and setuptools' package-dir
installs them as one package (`govpulse.streams.clean`). The editable install resolves that
with an import hook, which a static checker cannot follow, so this script mirrors the
installed layout as a tree of symlinks under `.typecheck/` (git-ignored), read from
pyproject's `[tool.setuptools.package-dir]`, and `[tool.mypy]` puts that tree on mypy's
path. mypy then reports paths inside the tree; they are rewritten to the real files
(`.typecheck/govpulse/streams/clean.py` -> `streams/clean.py`) so editors can jump to them.

With no arguments mypy checks what `[tool.mypy]` names (the whole `govpulse` package).
"""

from __future__ import annotations

import os
import re
import sys
import tomllib
from pathlib import Path

from mypy import api

ROOT = Path(__file__).resolve().parent.parent
TREE = ROOT / ".typecheck"
SKIPPED = {"__pycache__"}


def package_dirs() -> dict[str, Path]:
    """Installed package name -> the repository folder it comes from."""
    with open(ROOT / "pyproject.toml", "rb") as file:
        config = tomllib.load(file)
    mapping = config["tool"]["setuptools"]["package-dir"]
    return {package: ROOT / folder for package, folder in mapping.items()}


def wanted_links(mapping: dict[str, Path]) -> dict[Path, Path]:
    """Every symlink of the tree: its path under TREE -> the real file or folder.

    A package with no mapped sub-package is one link to its folder; one with mapped
    sub-packages (govpulse itself) is a real folder in the tree holding a link per entry of
    its source folder, plus its mapped sub-packages.
    """
    links: dict[Path, Path] = {}
    for package, source in mapping.items():
        place = TREE.joinpath(*package.split("."))
        children = {other.split(".")[-1] for other in mapping if other.startswith(package + ".")}
        if not children:
            links[place] = source
            continue
        for entry in source.iterdir():
            if entry.name not in SKIPPED and entry.name not in children:
                links[place / entry.name] = entry
    return links


def sync_tree(links: dict[Path, Path]) -> None:
    """Make TREE hold exactly `links`, touching only what differs (safe to run concurrently)."""
    folders = {TREE} | {
        folder for link in links for folder in link.parents if TREE in folder.parents
    }
    for top, dirs, files in os.walk(TREE, topdown=False):  # does not enter linked folders
        for name in dirs + files:
            path = Path(top, name)
            if path.is_symlink():
                if path not in links:
                    path.unlink(missing_ok=True)
            elif path.is_dir() and path not in folders:
                path.rmdir()
    for link, target in links.items():
        relative = os.path.relpath(target, link.parent)
        if link.is_symlink() and os.readlink(link) == relative:
            continue
        link.parent.mkdir(parents=True, exist_ok=True)
        temporary = link.with_name(f".{link.name}.{os.getpid()}")
        temporary.unlink(missing_ok=True)
        temporary.symlink_to(relative)
        os.replace(temporary, link)  # atomic: a concurrent run sees the old link or the new


def real_paths(text: str) -> str:
    """Rewrite paths into the tree at the start of mypy's lines to the repository's files."""

    def resolve(match: re.Match[str]) -> str:
        return os.path.relpath(os.path.realpath(match[0]))

    return re.sub(rf"^[^:\s]*{re.escape(TREE.name)}/[^:\s]+", resolve, text, flags=re.MULTILINE)


def main(argv: list[str]) -> int:
    sync_tree(wanted_links(package_dirs()))
    stdout, stderr, status = api.run(argv)
    sys.stdout.write(real_paths(stdout))
    sys.stderr.write(real_paths(stderr))
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
