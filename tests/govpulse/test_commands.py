"""The commands' shared behaviour: errors at start-up name the command and the setting."""

from __future__ import annotations

import os
import socket
import subprocess
import sys


def test_a_taken_metrics_port_stops_the_command_naming_it_and_the_setting():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {
            **os.environ,
            "GOVPULSE_METRICS_PORT": str(port),
            "GOVPULSE_BOOTSTRAP_SERVERS": "127.0.0.1:1",  # never reached: it stops before
        }
        run = subprocess.run(
            [sys.executable, "-m", "govpulse", "simulate", "--duration", "1"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert run.returncode == 2
    assert f"govpulse simulate: GOVPULSE_METRICS_PORT={port}" in run.stderr
