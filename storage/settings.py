"""Settings, parsed once from the environment into a frozen object.

Local names and the emulator's endpoint have defaults so that a fresh clone
runs with no configuration; outside ``ENV=local`` every name must be given
explicitly, so a production deploy can never fall back to a local default.
Every variable is listed, with its default, in the README.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar
from urllib.parse import quote, urlsplit

from botocore.utils import is_valid_endpoint_url, is_valid_ipv6_endpoint_url

from storage.errors import ConfigError

T = TypeVar("T")

LOCAL_ENDPOINT = "http://127.0.0.1:4566"
# The emulator accepts any credentials; these are what the local stack uses.
EMULATOR_CREDENTIALS = ("test", "test")
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
_CONTROL_PREFIX = re.compile(r"[A-Za-z0-9_-]{1,24}")
# SQS's rule for a (standard) queue name, S3's for a bucket's, and the log levels there are.
QUEUE_NAME = re.compile(r"[A-Za-z0-9_-]{1,80}")
BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# DynamoDB's rule for a table name.
TABLE_NAME = re.compile(r"[A-Za-z0-9_.-]{3,255}")
TABLE_NAME_RULE = "3 to 255 letters, digits, '_', '-' or '.'"
SQS_MAX_IN_FLIGHT_SECONDS = 43200  # SQS keeps a received message invisible 12 hours at most


def hold_limit(step_time_limit: int) -> int:
    """The longest a worker legitimately holds a job message before it acks or rejects it.

    A retry's countdown (at most a step's lease: the step limit + 5 s, tasks/runner.py), a wait
    for a free pool process (at most one step), the step itself (at most its limit), and 25 s
    more for the ack. Past it the message is no longer kept invisible: a wedged worker cannot
    keep it from the others for longer.
    """
    return 3 * step_time_limit + 30


@dataclass(frozen=True)
class Settings:
    env: str
    region: str
    aws_endpoint_url: str | None
    jobs_table_name: str
    artifacts_bucket: str | None  # None: demo mode, artifacts inlined from the table
    queue_name: str
    dead_letter_queue_name: str
    sqs_queue_url: str | None
    broker_url: str = field(repr=False)  # may carry credentials (the emulator's)
    control_prefix: str  # names every queue and topic of events and remote control
    events_topic_arn: str | None  # None: the topics are made on first use (local stack)
    control_topic_arn: str | None
    control_heartbeat_seconds: int  # control queues' heartbeat; 5 missed: swept as dead
    visibility_timeout_seconds: int
    sqs_wait_time_seconds: int
    stall_after_seconds: int
    sweep_interval_seconds: int
    step_time_limit_seconds: int
    presign_ttl_seconds: int
    job_ttl_days: int
    inline_artifact_max_bytes: int
    internal_token: str | None
    fault_drills: bool
    fault_drill_slow_seconds: float  # how long a slow:<step> drill sleeps in that step
    aws_timeout_seconds: float
    aws_max_attempts: int
    api_threads: int  # request threads of each API process (gunicorn's gthread workers)
    log_level: str
    metrics_namespace: str
    worker_heartbeat_file: str  # refreshed while the worker's consumer still takes messages
    worker_liveness_seconds: int  # a heartbeat older than this means the consumer is stuck
    task_events_seconds: int  # task events stay on this long after the last enable_events
    # (key id, secret) given to every AWS client, or None for boto3's own credential chain.
    # Set only for ENV=local against an emulator on loopback, so that a plain shell needs none.
    aws_credentials: tuple[str, str] | None = field(default=None, repr=False)

    @property
    def step_soft_time_limit_seconds(self) -> float:
        """When a step is asked to stop (it raises), before the hard limit kills it."""
        return max(self.step_time_limit_seconds - 5, self.step_time_limit_seconds * 0.8)

    @property
    def hold_limit_seconds(self) -> int:
        """How long a worker keeps a message it holds invisible, at most (tasks/sqs_visibility.py)."""
        return hold_limit(self.step_time_limit_seconds)

    @property
    def aws_pool_connections(self) -> int:
        """Connections each AWS client keeps open: one for each of a process's threads that may call
        at once (an API process's request threads share its clients), and botocore's 10 at least.
        Fewer, and urllib3 opens one more for each call past them, then drops it with a warning."""
        return max(10, self.api_threads)

    @property
    def demo_mode(self) -> bool:
        return self.artifacts_bucket is None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read and validate every setting; raise ConfigError naming the bad one."""
        environ = os.environ if environ is None else environ
        read = EnvReader(environ)
        env = read("ENV", str, "local")
        local = env == "local"

        def name(var: str, local_default: str) -> str:
            return read(var, str, local_default if local else None)

        endpoint = read("AWS_ENDPOINT_URL", str, LOCAL_ENDPOINT if local else "") or None
        if endpoint and not _is_endpoint(endpoint):
            # botocore would refuse it later, with a traceback from wherever the first client is made.
            raise ConfigError(
                f"AWS_ENDPOINT_URL is not valid: {endpoint} (e.g. {LOCAL_ENDPOINT})",
                details={"setting": "AWS_ENDPOINT_URL"},
            )
        credentials = _emulator_credentials(environ) if local and is_loopback(endpoint) else None
        bucket = name("ARTIFACTS_BUCKET", f"ghost-engine-artifacts-{env}") or None
        if bucket is not None and not BUCKET_NAME.fullmatch(bucket):
            raise ConfigError(
                f"ARTIFACTS_BUCKET is not valid: {bucket!r}: a bucket name is 3 to 63 lower-case letters, digits,"
                " '.' or '-' (empty: demo mode, artifacts in the table)",
                details={"setting": "ARTIFACTS_BUCKET"},
            )
        queues = {
            var: name(var, default)
            for var, default in (
                ("QUEUE_NAME", f"ghost-engine-jobs-{env}"),
                ("DEAD_LETTER_QUEUE_NAME", f"ghost-engine-jobs-dlq-{env}"),
            )
        }
        for var, queue in queues.items():
            if not QUEUE_NAME.fullmatch(queue):
                raise ConfigError(
                    f"{var} is not valid: {queue!r}: a queue name is 1 to 80 letters, digits, '-' or '_'",
                    details={"setting": var},
                )
        log_level = read("LOG_LEVEL", str, "INFO").strip().upper()
        if log_level not in LOG_LEVELS:
            raise ConfigError(
                f"LOG_LEVEL is one of {', '.join(LOG_LEVELS)}, got {log_level!r}", details={"setting": "LOG_LEVEL"}
            )
        jobs_table = name("JOBS_TABLE_NAME", f"ghost-engine-jobs-{env}")
        if not TABLE_NAME.fullmatch(jobs_table):
            # The emulator takes other names, which AWS then refuses; DynamoDB answers a call
            # naming one with a validation error that reads as if it were down.
            raise ConfigError(
                f"JOBS_TABLE_NAME is not valid: {jobs_table!r}: a table name is {TABLE_NAME_RULE}",
                details={"setting": "JOBS_TABLE_NAME"},
            )
        # The worker keeps the messages it holds invisible (tasks/sqs_visibility.py), so a step
        # may run longer than this: it is what a dead worker's message, or a lost receive, waits.
        visibility = read("VISIBILITY_TIMEOUT_SECONDS", int, 15, low=5, high=43200)
        step_limit = read("STEP_TIME_LIMIT_SECONDS", int, 120, low=2, high=3600)
        if hold_limit(step_limit) + visibility > SQS_MAX_IN_FLIGHT_SECONDS:
            # SQS refuses to keep a message in flight longer than 12 hours from its receipt.
            raise ConfigError(
                "VISIBILITY_TIMEOUT_SECONDS plus the hold limit (3 × STEP_TIME_LIMIT_SECONDS + 30)"
                f" must be at most {SQS_MAX_IN_FLIGHT_SECONDS}",
                details={"visibility": visibility, "stepTimeLimit": step_limit},
            )
        stall_after = read("STALL_AFTER_SECONDS", int, 1800, low=10, high=7 * 86400)
        if stall_after <= step_limit * 2:
            # A job is "stalled" only once no legitimate step, retried, could still be running.
            raise ConfigError(
                "STALL_AFTER_SECONDS must be more than twice STEP_TIME_LIMIT_SECONDS",
                details={"stallAfter": stall_after, "stepTimeLimit": step_limit},
            )
        # "ghost-{env}-ctl-" fits for any env Terraform accepts (at most 12 characters).
        control_prefix = read("CONTROL_PREFIX", str, f"ghost-{env}-ctl-")
        if not _CONTROL_PREFIX.fullmatch(control_prefix):
            # A reply queue is the prefix, a 36-character id and "-reply-celery-pidbox";
            # SQS queue names stop at 80 characters of letters, digits, "-" and "_".
            raise ConfigError(
                "CONTROL_PREFIX must be 1 to 24 letters, digits, '-' or '_'",
                details={"setting": "CONTROL_PREFIX"},
            )
        events_topic_arn = read("EVENTS_TOPIC_ARN", str, "") or None
        control_topic_arn = read("CONTROL_TOPIC_ARN", str, "") or None
        if (events_topic_arn is None) != (control_topic_arn is None):
            raise ConfigError(
                "EVENTS_TOPIC_ARN and CONTROL_TOPIC_ARN must be set together",
                details={"setting": "CONTROL_TOPIC_ARN" if events_topic_arn else "EVENTS_TOPIC_ARN"},
            )
        wait_time = read("SQS_WAIT_TIME_SECONDS", int, 10, low=0, high=20)
        liveness = read("WORKER_LIVENESS_SECONDS", int, 60, low=5, high=3600)
        if liveness <= 2 * (wait_time + 1):
            # An idle consumer finishes a receive every long poll (plus a short pause): give it two.
            raise ConfigError(
                "WORKER_LIVENESS_SECONDS must be more than 2 × (SQS_WAIT_TIME_SECONDS + 1)",
                details={"liveness": liveness, "sqsWaitTime": wait_time},
            )
        fault_drills = read("FAULT_DRILLS", _flag, False)
        if fault_drills and env == "prod":
            raise ConfigError("FAULT_DRILLS cannot be enabled when ENV=prod")
        return cls(
            env=env,
            region=read("AWS_REGION", str, "") or environ.get("AWS_DEFAULT_REGION") or "us-east-1",
            aws_endpoint_url=endpoint,
            jobs_table_name=jobs_table,
            artifacts_bucket=bucket,
            queue_name=queues["QUEUE_NAME"],
            dead_letter_queue_name=queues["DEAD_LETTER_QUEUE_NAME"],
            sqs_queue_url=read("SQS_QUEUE_URL", str, "") or None,
            broker_url=read("BROKER_URL", str, _default_broker_url(endpoint, credentials, environ)),
            control_prefix=control_prefix,
            events_topic_arn=events_topic_arn,
            control_topic_arn=control_topic_arn,
            control_heartbeat_seconds=read("CONTROL_HEARTBEAT_SECONDS", int, 60, low=1, high=3600),
            visibility_timeout_seconds=visibility,
            stall_after_seconds=stall_after,
            sweep_interval_seconds=read("SWEEP_INTERVAL_SECONDS", int, 60, low=0, high=86400),
            sqs_wait_time_seconds=wait_time,
            step_time_limit_seconds=step_limit,
            presign_ttl_seconds=read("PRESIGN_TTL_SECONDS", int, 900, low=60, high=3600),
            job_ttl_days=read("JOB_TTL_DAYS", int, 14, low=1, high=365),
            inline_artifact_max_bytes=read("INLINE_ARTIFACT_MAX_BYTES", int, 256 * 1024, low=1024, high=350 * 1024),
            internal_token=read("INTERNAL_TOKEN", str, "") or None,
            fault_drills=fault_drills,
            fault_drill_slow_seconds=read("FAULT_DRILL_SLOW_SECONDS", float, 5.0, low=0, high=3600),
            aws_timeout_seconds=read("AWS_TIMEOUT_SECONDS", float, 1.0, low=0.1, high=60),
            aws_max_attempts=read("AWS_MAX_ATTEMPTS", int, 3, low=1, high=10),
            api_threads=read("API_THREADS", int, 8, low=1, high=256),
            log_level=log_level,
            metrics_namespace=read("METRICS_NAMESPACE", str, "GhostEngine") or "GhostEngine",
            # /tmp: the one writable path on ECS (a scratch volume), and only the worker writes there.
            worker_heartbeat_file=read("WORKER_HEARTBEAT_FILE", str, "/tmp/ghost-engine-worker.alive"),  # noqa: S108 - ECS scratch (above)
            worker_liveness_seconds=liveness,
            task_events_seconds=read("TASK_EVENTS_SECONDS", int, 30, low=10, high=86400),
            aws_credentials=credentials,
        )


def is_loopback(endpoint: str | None) -> bool:
    """True for an endpoint on this machine (an emulator); False for none (AWS itself) or another host."""
    return bool(endpoint) and urlsplit(endpoint).hostname in _LOOPBACK_HOSTS


def _is_endpoint(url: str) -> bool:
    """An http(s) URL with a host, as botocore takes for an endpoint."""
    return urlsplit(url).scheme in {"http", "https"} and (is_valid_endpoint_url(url) or is_valid_ipv6_endpoint_url(url))


def _emulator_credentials(environ: Mapping[str, str]) -> tuple[str, str]:
    """The shell's credentials if it has a pair, else the emulator's dummy ones."""
    key, secret = environ.get("AWS_ACCESS_KEY_ID"), environ.get("AWS_SECRET_ACCESS_KEY")
    return (key, secret) if key and secret else EMULATOR_CREDENTIALS


def _default_broker_url(endpoint: str | None, credentials: tuple[str, str] | None, environ: Mapping[str, str]) -> str:
    # kombu's SQS transport takes its endpoint from the broker URL, not from
    # AWS_ENDPOINT_URL, so an emulator endpoint must be spelled out here.
    if not endpoint:
        return "sqs://"
    parts = urlsplit(endpoint)
    key, secret = credentials or (
        environ.get("AWS_ACCESS_KEY_ID", EMULATOR_CREDENTIALS[0]),
        environ.get("AWS_SECRET_ACCESS_KEY", EMULATOR_CREDENTIALS[1]),
    )
    return f"sqs://{quote(key, safe='')}:{quote(secret, safe='')}@{parts.netloc}"


def _flag(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"expected a boolean, got {raw!r}")


class EnvReader:
    """Reads one variable, coerces it and checks its range."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def __call__(
        self,
        var: str,
        coerce: Callable[[str], T],
        default: T | None,
        *,
        low: float | None = None,
        high: float | None = None,
    ) -> T:
        raw = self._environ.get(var)
        if raw is None:
            if default is None:
                raise ConfigError(f"{var} must be set outside ENV=local", details={"setting": var})
            return default
        try:
            value = coerce(raw)
        except ValueError as exc:
            raise ConfigError(f"{var} is not valid: {exc}", details={"setting": var}) from exc
        # low and high come only with int or float coercers.
        if (low is not None and value < low) or (high is not None and value > high):  # type: ignore[operator]
            raise ConfigError(f"{var} must be between {low:g} and {high:g}, got {raw}", details={"setting": var})
        return value
