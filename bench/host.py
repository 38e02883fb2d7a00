"""What a benchmark's figures depend on, printed beside them: cores, load, and a speed score.

The machines these benchmarks run on are shared virtual machines whose speed has varied up to
2.5× between days (`bench.transform`: 20k-55k events/s for the same code). A figure without
the speed it was measured at cannot be compared with one from another day; `python_mips` is a
fixed pure-Python loop timed for ~0.2 s before the run, so figures from two days can be scaled.
"""

from __future__ import annotations

import os
import resource
import time
from typing import Any

_LOOP = 2_000_000


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def python_mips(repeats: int = 3) -> float:
    """Millions of iterations per second of a fixed pure-Python loop (best of `repeats`)."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        total = 0
        for i in range(_LOOP):
            total += i
        best = min(best, time.perf_counter() - started)
    return round(_LOOP / best / 1e6, 1)


def host_facts() -> dict[str, Any]:
    """Cores, load average and speed score, taken now: call it before the run starts."""
    return {
        "cores": os.cpu_count(),
        "load_avg": [round(x, 2) for x in os.getloadavg()],
        "python_mips": python_mips(),
    }
