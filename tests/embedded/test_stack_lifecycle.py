"""How `govpulse up` holds its directory and starts and stops its children, on real processes."""

from __future__ import annotations

import os
import sys
import threading
import time

import pytest

from govpulse.embedded.process import ManagedProcess, ServiceError, StartAborted
from govpulse.embedded.stack import hold_data_dir


def sleeper(tmp_path) -> ManagedProcess:
    return ManagedProcess(
        "sleeper", [sys.executable, "-c", "import time; time.sleep(60)"], tmp_path / "s.log"
    )


def test_a_second_up_on_the_same_directory_is_refused_naming_the_first(tmp_path):
    first = hold_data_dir(tmp_path)
    try:
        with pytest.raises(ServiceError, match=rf"another `govpulse up` \(pid {os.getpid()}\)"):
            hold_data_dir(tmp_path)
    finally:
        first.close()
    hold_data_dir(tmp_path).close()  # free again once the first is gone


def test_a_child_runs_in_its_own_process_group_so_ctrl_c_reaches_only_up(tmp_path):
    child = sleeper(tmp_path)
    child.start()
    try:
        assert os.getpgid(child.pid) == child.pid != os.getpgid(0)
    finally:
        child.stop(grace=1)


def test_a_stop_asked_during_start_up_ends_the_wait_for_readiness(tmp_path):
    child = sleeper(tmp_path)
    child.abort = threading.Event()
    child.start()
    threading.Timer(0.3, child.abort.set).start()
    started = time.monotonic()
    try:
        with pytest.raises(StartAborted, match="while sleeper was starting"):
            child.wait_ready(lambda: False, timeout=30)
        assert time.monotonic() - started < 5
        assert not child.running()  # stopped: not in the stack's list yet, nobody else would
    finally:
        child.stop(grace=1)


def test_a_log_past_its_limit_is_moved_aside_when_its_process_starts(tmp_path, monkeypatch):
    monkeypatch.setattr("govpulse.embedded.process.LOG_ROTATE_BYTES", 10)
    child = sleeper(tmp_path)
    child.log_path.write_text("an older run's lines\n")
    child.start()
    child.stop(grace=1)
    assert (tmp_path / "s.log.1").read_text() == "an older run's lines\n"
    assert "older run" not in child.log_path.read_text()
