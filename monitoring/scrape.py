"""Read a process's /metrics the way Prometheus would: for benchmarks, tests and tools.

Parsing is prometheus_client's own text parser, not regular expressions.
"""

from __future__ import annotations

import urllib.request

from prometheus_client.parser import text_string_to_metric_families


def sample_total(url: str, name: str, timeout: float = 2.0, **labels: str) -> float:
    """Sum of the samples called `name` whose labels include `labels`; 0 when unreachable.

    `name` is the sample's name as exposed (`…_total`, `…_sum`, `…_count`).
    """
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            text = response.read().decode()
    except OSError:
        return 0.0
    return sum_samples(text, name, **labels)


def sum_samples(text: str, name: str, **labels: str) -> float:
    """Sum of the samples called `name` (with these labels) in an exposition text."""
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )
