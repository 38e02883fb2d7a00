"""Child processes that die with their parent and stop cleanly: the embedded stack's services."""

from __future__ import annotations

import contextlib
import ctypes
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

_PR_SET_PDEATHSIG = 1
LOG_ROTATE_BYTES = 50 * 1024 * 1024  # a log past this at start is moved to <name>.1


class ServiceError(RuntimeError):
    """A service of the embedded stack could not start or answer; the message says what to do."""


class StartAborted(ServiceError):
    """Asked to stop (Ctrl-C, SIGTERM) while a service was still starting."""


def _die_with_parent() -> None:  # runs in the child between fork and exec
    # Only when the parent itself was killed hard: an orderly stop sends SIGTERM and waits.
    # SIGKILL, not SIGTERM: a worker shutting down gracefully would wait for a broker that
    # died with the same parent (the simulator's flush, Faust's commit). Every service is
    # safe to kill: at-least-once offsets, idempotent inserts, a transactional registry.
    # Not on Linux: the parent's signal handlers still stop children on a clean exit.
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def answers(url: str, timeout: float = 2.0) -> bool:
    """Whether an HTTP endpoint answers `url` (any status but a connection error)."""
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=timeout):
            return True
    except OSError:
        return False


def port_in_use(host: str, port: int) -> bool:
    """True if something already listens on host:port (so our service would fail to bind)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def free_port(host: str = "127.0.0.1") -> int:
    """A port the OS considers free right now (for tests and ad-hoc stacks)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def free_port_block(count: int, host: str = "127.0.0.1") -> int:
    """The first of `count` consecutive ports that are all free right now.

    Drawn below Linux's ephemeral range (32768+), where no client socket of a running test
    can take one of them between this check and the service binding it.
    """
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(20000, 32000 - count)
        with contextlib.ExitStack() as held:
            try:
                for port in range(base, base + count):
                    probe = held.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
                    probe.bind((host, port))
            except OSError:
                continue
            return base
    raise ServiceError(f"no {count} consecutive free ports found on {host} in 20000-32000")


class ManagedProcess:
    """One service process: started with a log file, probed until ready, stopped by its PID."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        env: dict[str, str] | None = None,
        grace: float = 10.0,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None
        self.abort: threading.Event | None = None  # set: stop waiting for readiness
        self.grace = grace

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):  # one older log kept: runs append, never rotated
            if self.log_path.stat().st_size > LOG_ROTATE_BYTES:
                self.log_path.replace(self.log_path.with_name(self.log_path.name + ".1"))
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child keeps writing to it
        try:
            self.proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                preexec_fn=_die_with_parent,
                # A group of its own: Ctrl-C in a terminal reaches `govpulse up` only, which
                # stops the services in order (the broker last), not all at once.
                process_group=0,
            )
        finally:
            log.close()

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_ready(self, probe: Callable[[], bool], timeout: float) -> None:
        """Poll `probe` until it returns True; fail early if the process exits."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.abort is not None and self.abort.is_set():
                self.stop()  # not in the stack's started list yet: nobody else stops it
                raise StartAborted(f"stopped while {self.name} was starting")
            if not self.running():
                raise ServiceError(
                    f"{self.name} exited with code {self.proc.returncode if self.proc else '?'} "
                    f"during start-up; last lines of {self.log_path}:\n{self.tail()}"
                )
            if probe():
                return
            time.sleep(0.1)
        self.stop()
        raise ServiceError(
            f"{self.name} did not become ready within {timeout:.0f} s; "
            f"see {self.log_path}:\n{self.tail()}"
        )

    def stop(self, grace: float | None = None) -> int | None:
        """SIGTERM, then SIGKILL after `grace` seconds (default: the process's). Exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(self.grace if grace is None else grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


def python_module_argv(module: str, *args: str) -> list[str]:
    """argv that runs `python -m module args` with this interpreter (works in any venv)."""
    return [sys.executable, "-m", module, *args]
