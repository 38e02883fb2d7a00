"""Run the embedded registry as a child process (for `govpulse up` and the test fixtures)."""

from __future__ import annotations

import urllib.request
from pathlib import Path

from govpulse.embedded.process import ManagedProcess, ServiceError, port_in_use, python_module_argv


def registry_answers(url: str, timeout: float = 1.0) -> bool:
    """True when GET {url}/subjects answers 200."""
    try:
        with urllib.request.urlopen(f"{url}/subjects", timeout=timeout) as response:
            return response.status == 200
    except OSError:
        return False


class EmbeddedRegistry:
    """`python -m govpulse.embedded.registry` on host:port with its state under `data_dir`."""

    def __init__(self, host: str, port: int, data_dir: Path, log_dir: Path) -> None:
        self.host = host
        self.port = port
        self.url = f"http://{host}:{port}"
        self.data_dir = data_dir
        self.log_dir = log_dir
        self.process = self._new_process()

    def _new_process(self) -> ManagedProcess:
        argv = python_module_argv(
            "govpulse.embedded.registry",
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
        )
        return ManagedProcess("schema registry", argv, self.log_dir / "registry.log")

    def start(self, timeout: float = 30.0) -> EmbeddedRegistry:
        if port_in_use(self.host, self.port):
            raise ServiceError(
                f"cannot start the schema registry: {self.host}:{self.port} is already in use "
                "(stop what listens there or set GOVPULSE_REGISTRY_URL to a free port)"
            )
        self.process.start()
        self.process.wait_ready(lambda: registry_answers(self.url), timeout)
        return self

    def stop(self) -> int | None:
        return self.process.stop()

    def restart(self) -> EmbeddedRegistry:
        """Stop and start again on the same port and data directory (durability tests)."""
        self.stop()
        self.process = self._new_process()
        return self.start()
