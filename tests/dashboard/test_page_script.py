"""The page's script parses: a syntax error would leave every screen blank, found only by the
browser tests (minutes later, and skipped where Chromium is missing)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from govpulse.dashboard.app import STATIC_DIR


def test_the_page_script_is_valid_javascript() -> None:
    node = shutil.which("node") or shutil.which("nodejs")
    if node is None:
        pytest.skip("needs node (Debian's nodejs) to parse the script")
    checked = subprocess.run(
        [node, "--check", str(STATIC_DIR / "app.js")], capture_output=True, text=True, timeout=30
    )
    assert checked.returncode == 0, checked.stderr
