"""CloudWatch metrics, written as Embedded Metric Format lines by aws-embedded-metrics.

On Fargate there is no CloudWatch agent: the library's ``Local`` environment
prints each metric set as one JSON line on stdout, the awslogs driver ships it
to CloudWatch Logs, and CloudWatch extracts the metrics from the line. Set
AWS_EMF_ENVIRONMENT to override (the library's own variable).

    JobSucceeded, JobFailed, JobCancelled   Count
    JobDurationMs                           Milliseconds, creation to done
    StepDurationMs                          Milliseconds, dimension Step
    StepErrors                              Count, dimension Step
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

from aws_embedded_metrics.config import get_config
from aws_embedded_metrics.environment.environment_detector import EnvironmentCache
from aws_embedded_metrics.logger.metrics_logger_factory import create_metrics_logger

SERVICE = "ghost-engine"

_enabled = True


def _set_environment() -> None:
    """Where metrics go: AWS_EMF_ENVIRONMENT, else ``Local`` (stdout).

    Without an explicit environment the library probes EC2's metadata endpoint over the network
    and, finding none, settles on its agent sink (a TCP socket nobody listens on); and it keeps
    the first environment it resolves for the life of the process, so a later configure() would
    not move it. So it is set before any metric can be emitted, and each configure() starts the
    resolution over.
    """
    get_config().environment = os.environ.get("AWS_EMF_ENVIRONMENT") or "Local"
    EnvironmentCache.environment = None


_set_environment()


def configure(namespace: str, *, operator: bool = False) -> None:
    """Set the namespace, and stdout output unless AWS_EMF_ENVIRONMENT says otherwise.

    ``operator``: an operator's command (``celery -A tasks cancel-job``) on someone's terminal,
    where stdout is a screen, not a log CloudWatch reads. It emits metrics only where
    AWS_EMF_ENVIRONMENT sends them somewhere (e.g. ``Agent``, a CloudWatch agent); else none.
    """
    global _enabled
    _enabled = not operator or bool(os.environ.get("AWS_EMF_ENVIRONMENT"))
    config = get_config()
    config.namespace = namespace
    config.service_name = SERVICE
    _set_environment()


def _emit(metrics: dict[str, tuple[float, str]], dimensions: dict[str, str], **properties) -> None:
    if not _enabled:
        return
    logger = create_metrics_logger()
    logger.set_dimensions(dimensions)
    for name, (value, unit) in metrics.items():
        logger.put_metric(name, value, unit)
    for key, value in properties.items():
        if value is not None:
            logger.set_property(key, value)
    logger.flush_sync()


def step_succeeded(step: str, duration_ms: int, job_id: str) -> None:
    """One step computed and recorded."""
    _emit({"StepDurationMs": (duration_ms, "Milliseconds")}, {"Service": SERVICE, "Step": step}, jobId=job_id)


def step_failed(step: str, code: str, job_id: str) -> None:
    """A step that failed for good."""
    _emit({"StepErrors": (1, "Count")}, {"Service": SERVICE, "Step": step}, jobId=job_id, code=code)


def job_succeeded(created_at: str, job_id: str) -> None:
    """A job reached done."""
    elapsed = datetime.now(UTC) - datetime.fromisoformat(created_at)
    _emit(
        {"JobSucceeded": (1, "Count"), "JobDurationMs": (int(elapsed.total_seconds() * 1000), "Milliseconds")},
        {"Service": SERVICE},
        jobId=job_id,
    )


def job_failed(code: str, job_id: str) -> None:
    """A job reached failed."""
    _emit({"JobFailed": (1, "Count")}, {"Service": SERVICE}, jobId=job_id, code=code)


def job_cancelled(job_id: str) -> None:
    """A job was cancelled."""
    _emit({"JobCancelled": (1, "Count")}, {"Service": SERVICE}, jobId=job_id)
