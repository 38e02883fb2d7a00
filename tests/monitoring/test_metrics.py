"""The metric catalogue: names the alerts and dashboards use exist, labels stay bounded, and
every process can serve them."""

from __future__ import annotations

import json
import math
import re
import socket
import urllib.request
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Gauge, generate_latest
from prometheus_client.metrics import MetricWrapperBase

from govpulse.monitoring import metrics
from govpulse.monitoring.server import MetricsPortInUse, serve_metrics

MONITORING = Path(metrics.__file__).parent
ALERTS = MONITORING / "alerts.yml"
DASHBOARDS = sorted((MONITORING / "grafana" / "dashboards").glob("*.json"))
METRIC_NAME = re.compile(r"\bgovpulse_[a-z_]+")
# The only label names a govpulse metric may have: each takes values from a small fixed set.
BOUNDED_LABELS = {
    "event_type",
    "topic",
    "partition",
    "reason",
    "outcome",
    "endpoint",
    "status",
    "table",
    "component",
    "field",  # a schema's field name: a few per event type
    "panel",  # a dashboard panel (the API's endpoint methods): about ten
}
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "info": ("_info",),
    "gauge": ("",),
}


def declared() -> dict[str, MetricWrapperBase]:
    return {
        name: value for name, value in vars(metrics).items() if isinstance(value, MetricWrapperBase)
    }


def exposed_names() -> set[str]:
    """Every series name the declared metrics can expose (family name plus type suffixes)."""
    names = set()
    for metric in declared().values():
        family = metric.describe()[0]
        names |= {family.name + suffix for suffix in SUFFIXES[family.type]}
    return names


def names_in(text: str) -> set[str]:
    return set(METRIC_NAME.findall(text))


def without_comments(yaml_text: str) -> str:
    return re.sub(r"(^|\s)#.*", "", yaml_text)


def dashboard_queries(path: Path) -> list[str]:
    def walk(node):
        if isinstance(node, dict):
            if isinstance(node.get("expr"), str):
                yield node["expr"]
            for value in node.values():
                yield from walk(value)
        elif isinstance(node, list):
            for value in node:
                yield from walk(value)

    return list(walk(json.loads(path.read_text(encoding="utf-8"))))


def test_every_metric_name_in_alert_rules_is_declared():
    used = names_in(without_comments(ALERTS.read_text(encoding="utf-8")))
    assert used, "alerts.yml uses no govpulse_ metric"
    assert not used - exposed_names(), "not declared in monitoring/metrics.py"


def test_there_is_a_pipeline_health_dashboard():
    titles = [json.loads(p.read_text(encoding="utf-8"))["title"] for p in DASHBOARDS]
    assert "govpulse pipeline health" in titles


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_every_metric_name_in_grafana_dashboard_is_declared(path: Path):
    used = set().union(*(names_in(query) for query in dashboard_queries(path)))
    assert used, f"{path.name} queries no govpulse_ metric"
    assert not used - exposed_names(), "not declared in monitoring/metrics.py"


def test_the_names_other_components_rely_on_are_declared():
    for name in (
        "govpulse_streams_consumed_total",
        "govpulse_streams_clean_total",
        "govpulse_streams_dead_lettered_total",
        "govpulse_streams_duplicates_total",
        "govpulse_streams_ids_masked_total",
        "govpulse_streams_batch_seconds_bucket",
        "govpulse_streams_batch_size_bucket",
        "govpulse_streams_record_age_seconds_bucket",
        "govpulse_sink_rows_inserted_total",
        "govpulse_sink_insert_seconds_bucket",
        "govpulse_sink_insert_retries_total",
        "govpulse_sink_insert_failures_total",
        "govpulse_sink_batch_rows_bucket",
        "govpulse_sink_consumer_lag",
        "govpulse_sink_freshness_seconds",
        "govpulse_sink_data_age_seconds",
        "govpulse_sink_paused",
        "govpulse_dashboard_request_seconds_bucket",
        "govpulse_dashboard_requests_total",
        "govpulse_build_info",
        "govpulse_producer_sent_total",
        "govpulse_producer_failed_total",
    ):
        assert name in exposed_names(), name


def test_every_metric_is_named_govpulse_and_declared_once():
    families = [metric.describe()[0].name for metric in declared().values()]
    assert all(name.startswith("govpulse_") for name in families), families
    assert len(families) == len(set(families))


@pytest.mark.parametrize("attribute", sorted(declared()))
def test_labels_are_bounded_never_ids(attribute: str):
    labels = set(declared()[attribute]._labelnames)
    assert not {label for label in labels if label == "id" or label.endswith("_id")}
    assert labels <= BOUNDED_LABELS, f"{attribute}: unbounded label {labels - BOUNDED_LABELS}"


def test_latency_buckets_cover_one_millisecond_to_thirty_seconds():
    assert metrics.LATENCY_BUCKETS[0] == 0.001
    assert metrics.LATENCY_BUCKETS[-1] == 30.0
    assert list(metrics.LATENCY_BUCKETS) == sorted(metrics.LATENCY_BUCKETS)


def test_serve_metrics_serves_govpulse_metrics_on_a_free_port():
    port = serve_metrics(0, component="streams")
    assert port > 0
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        body = response.read().decode()
    assert re.search(r'govpulse_build_info\{component="streams",version="[^"]+"\} 1\.0', body)
    assert "# TYPE govpulse_streams_consumed_total counter" in body
    assert "govpulse_sink_insert_seconds_bucket" in body


def test_serve_metrics_on_a_taken_port_names_the_setting():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(MetricsPortInUse, match=f"GOVPULSE_METRICS_PORT={port}"):
            serve_metrics(port, component="sink")


def test_serve_metrics_refuses_an_unknown_component():
    with pytest.raises(ValueError, match="unknown component"):
        serve_metrics(0, component="sink-7f3a")


def freshness_on(clock_values: list[float]) -> tuple[metrics.Freshness, CollectorRegistry]:
    registry = CollectorRegistry()
    gauge = Gauge("freshness_seconds", "test", registry=registry)
    return metrics.Freshness(gauge, clock=lambda: clock_values[0]), registry


def value(registry: CollectorRegistry) -> float:
    return registry.get_sample_value("freshness_seconds")


def test_freshness_is_nan_in_a_process_that_is_not_a_sink():
    _, registry = freshness_on([1000.0])
    assert math.isnan(value(registry))
    assert b"freshness_seconds NaN" in generate_latest(registry)


def test_freshness_counts_from_sink_start_until_the_first_insert():
    now = [1000.0]
    freshness, registry = freshness_on(now)
    freshness.start()
    now[0] = 1012.5
    assert value(registry) == 12.5


def test_freshness_follows_the_newest_stored_record_and_ages_between_scrapes():
    now = [1000.0]
    freshness, registry = freshness_on(now)
    freshness.start()
    freshness.stored(1003.0)
    freshness.stored(1001.0)  # an older batch replayed later does not make data look older
    now[0] = 1004.0
    assert value(registry) == 1.0
    now[0] = 1040.0  # nothing stored since: a hung sink loop still shows its data ageing
    assert value(registry) == 37.0


def data_age_on(clock_values: list[float]) -> tuple[metrics.DataAge, CollectorRegistry]:
    registry = CollectorRegistry()
    gauge = Gauge("data_age_seconds", "test", ["event_type"], registry=registry)
    return metrics.DataAge(gauge, clock=lambda: clock_values[0]), registry


def age(registry: CollectorRegistry, event_type: str = "complaint") -> float | None:
    return registry.get_sample_value("data_age_seconds", {"event_type": event_type})


def test_data_age_is_how_old_the_stored_records_are_not_the_time_since_their_insert():
    """Issue 18: a backlog produced 7 s ago, stored just now. The time since the insert is ~0
    and the freshness clock runs from the sink's start; the data is 7 s old."""
    now = [1000.0]
    data_age, registry = data_age_on(now)
    freshness, freshness_registry = freshness_on(now)
    data_age.start()
    freshness.start()
    now[0] = 1001.0  # the sink stores the backlog's newest record, produced at 994
    data_age.stored("complaint", 994.0)
    freshness.stored(994.0)
    now[0] = 1001.2
    assert age(registry) == pytest.approx(7.2)
    assert value(freshness_registry) == pytest.approx(1.2)  # the stall clock, not the age


def test_a_backlog_of_one_type_does_not_hide_behind_the_others_fresh_data():
    now = [1000.0]
    data_age, registry = data_age_on(now)
    data_age.start()
    data_age.stored("service_request", 999.5)
    data_age.stored("complaint", 993.0)  # raw.complaint 7 s behind
    assert age(registry, "service_request") == pytest.approx(0.5)
    assert age(registry, "complaint") == pytest.approx(7.0)


def test_data_age_has_no_series_until_a_type_is_stored_and_is_nan_after_a_restart():
    now = [1000.0]
    data_age, registry = data_age_on(now)
    data_age.start()
    now[0] = 1030.0
    assert age(registry) is None  # no clock from the start: nothing is known yet
    data_age.stored("complaint", 1029.0)
    assert age(registry) == 1.0
    assert age(registry, "dataset_update") is None
    data_age.start()  # a new sink in the same process: what the old one stored says nothing
    assert b'data_age_seconds{event_type="complaint"} NaN' in generate_latest(registry)


def test_data_age_follows_the_newest_record_ages_between_scrapes_and_is_never_negative():
    now = [1000.0]
    data_age, registry = data_age_on(now)
    data_age.start()
    data_age.stored("complaint", 990.0)
    data_age.stored("complaint", 980.0)  # an older batch stored later: data no older
    assert age(registry) == 10.0
    now[0] = 1060.0  # nothing stored since: the data keeps ageing
    assert age(registry) == 70.0
    data_age.stored("complaint", 1065.0)  # a producer whose clock runs ahead
    assert age(registry) == 0.0


def test_scrape_sums_samples_by_name_and_labels():
    from govpulse.monitoring.scrape import sum_samples

    text = (
        "# TYPE c counter\n"
        'c_total{event_type="a",reason="x"} 2.0\n'
        'c_total{event_type="a",reason="y"} 3.0\n'
        'c_total{event_type="b",reason="x"} 5.0\n'
    )
    assert sum_samples(text, "c_total") == 10
    assert sum_samples(text, "c_total", event_type="a") == 5
    assert sum_samples(text, "c_total", event_type="c") == 0
