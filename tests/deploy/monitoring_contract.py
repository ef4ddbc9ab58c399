"""Which metrics a dashboard or alarm may name: what the code emits, and the AWS metrics we chart.

The app's metrics are not listed here: they are read from what tasks/metrics.py actually
prints (EMF lines), by calling every public emitter once. A widget or alarm that names a
metric, namespace or dimension the code does not emit is reported by `unknown_references`.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import json
import re
from dataclasses import dataclass

from tasks import metrics

# AWS's own metrics the dashboard and alarms use: namespace -> metric -> its dimension names.
AWS_METRICS = {
    "AWS/SQS": {
        name: frozenset({"QueueName"})
        for name in (
            "ApproximateNumberOfMessagesVisible",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateAgeOfOldestMessage",
        )
    },
    "AWS/ApplicationELB": {
        name: frozenset({"LoadBalancer"})
        for name in ("HTTPCode_ELB_5XX_Count", "HTTPCode_Target_5XX_Count", "TargetResponseTime")
    },
    "ECS/ContainerInsights": {
        name: frozenset({"ClusterName", "ServiceName"}) for name in ("RunningTaskCount", "DesiredTaskCount")
    },
}

# Sample arguments for the emitters' parameters, by name; a new parameter fails loudly.
_SAMPLE_ARGS = {
    "step": "parse_prompt",
    "duration_ms": 1,
    "job_id": "job",
    "code": "CODE",
    "created_at": "2026-01-01T00:00:00+00:00",
}


@dataclass(frozen=True)
class MetricRef:
    """One metric a widget or alarm names: namespace, metric name and dimensions (name -> value or None)."""

    where: str
    namespace: str
    metric: str
    dimensions: tuple[tuple[str, str | None], ...]


def emitted_metrics(namespace: str) -> dict[str, set[tuple[tuple[str, str | None], ...]]]:
    """Metric name -> the dimension sets (with the values the code gives them) tasks/metrics.py prints."""
    metrics.configure(namespace)
    emitters = [
        function
        for name, function in inspect.getmembers(metrics, inspect.isfunction)
        if not name.startswith("_") and function.__module__ == metrics.__name__ and name != "configure"
    ]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        for emitter in emitters:
            emitter(**{name: _SAMPLE_ARGS[name] for name in inspect.signature(emitter).parameters})
    found: dict[str, set[tuple[tuple[str, str | None], ...]]] = {}
    for line in out.getvalue().splitlines():
        document = json.loads(line)
        for directive in document["_aws"]["CloudWatchMetrics"]:
            assert directive["Namespace"] == namespace
            for dimension_set in directive["Dimensions"]:
                # A per-step value varies; every other value is fixed by the code.
                dims = tuple(sorted((d, None if d == "Step" else document[d]) for d in dimension_set))
                for metric in directive["Metrics"]:
                    found.setdefault(metric["Name"], set()).add(dims)
    assert found, "tasks/metrics.py emitted nothing"
    return found


_SEARCH = re.compile(r"SEARCH\('\{([^}]*)\}\s*(.*?)',")


def dashboard_references(body: dict) -> list[MetricRef]:
    """Every metric a CloudWatch dashboard body names, in metric arrays and SEARCH expressions."""
    refs = []
    for number, widget in enumerate(body["widgets"]):
        where = f"widget {number} ({widget['properties'].get('title')})"
        for row in widget["properties"].get("metrics", []):
            fields = [item for item in row if not isinstance(item, dict)]
            if fields:
                namespace, metric, *pairs = fields
                refs.append(
                    MetricRef(where, namespace, metric, tuple(sorted(zip(pairs[::2], pairs[1::2], strict=True))))
                )
            for item in row:
                if isinstance(item, dict) and "expression" in item:
                    refs.extend(_search_references(where, item["expression"]))
    return refs


def _search_references(where: str, expression: str) -> list[MetricRef]:
    match = _SEARCH.search(expression)
    assert match, f"{where}: only SEARCH expressions are expected, got {expression!r}"
    namespace, *dimension_names = [part.strip() for part in match[1].split(",")]
    terms = dict(re.findall(r'(\w+)="([^"]*)"', match[2]))
    metric = terms.pop("MetricName")
    dims = tuple(sorted((name, terms.get(name)) for name in dimension_names))
    return [MetricRef(where, namespace, metric, dims)]


def alarm_references(alarms: list[dict]) -> list[MetricRef]:
    """Every metric the alarms (DescribeAlarms' MetricAlarms) name."""
    refs = []
    for alarm in alarms:
        where = f"alarm {alarm['AlarmName']}"
        stats = [query["MetricStat"]["Metric"] for query in alarm.get("Metrics", []) if "MetricStat" in query]
        if alarm.get("MetricName"):
            stats.append(alarm)
        for metric in stats:
            dims = tuple(sorted((d["Name"], d["Value"]) for d in metric.get("Dimensions", [])))
            refs.append(MetricRef(where, metric["Namespace"], metric["MetricName"], dims))
    return refs


def unknown_references(refs: list[MetricRef], namespace: str, known_values: dict[str, set[str]]) -> list[str]:
    """What the references name that the code does not emit (or AWS does not publish); empty when all is known.

    ``known_values``: dimension name -> the values that exist (queue, cluster and service names...).
    """
    emitted = emitted_metrics(namespace)
    problems = []
    for ref in refs:
        if ref.namespace == namespace:
            if ref.metric not in emitted:
                problems.append(f"{ref.where}: {namespace}/{ref.metric} is not emitted by tasks/metrics.py")
            elif ref.dimensions not in emitted[ref.metric]:
                emits = sorted(emitted[ref.metric])
                problems.append(f"{ref.where}: {ref.metric} with {dict(ref.dimensions)}; the code emits {emits}")
        elif ref.namespace in AWS_METRICS:
            wanted = AWS_METRICS[ref.namespace].get(ref.metric)
            if wanted is None:
                problems.append(f"{ref.where}: {ref.namespace}/{ref.metric} is not a metric we chart")
            elif {name for name, _ in ref.dimensions} != wanted:
                problems.append(
                    f"{ref.where}: {ref.metric} dimensions {dict(ref.dimensions)}, AWS publishes {sorted(wanted)}"
                )
            for name, value in ref.dimensions:
                if name in known_values and value not in known_values[name]:
                    problems.append(f"{ref.where}: {name}={value} names nothing that exists")
        else:
            problems.append(f"{ref.where}: namespace {ref.namespace} is neither the app's ({namespace}) nor AWS's")
    return problems
