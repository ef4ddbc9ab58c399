"""Celery settings for ghost-engine, read from the same Settings as the API.

Each setting says why it is what it is: the job item in DynamoDB is the only
source of truth, and SQS delivers at least once.
"""

from storage.settings import Settings

_settings = Settings.from_env()

broker_url = _settings.broker_url
# kombu's SQS transport, extended to carry events and remote control over SNS (see the module).
broker_transport = "tasks.sqs_fanout:Transport"
broker_transport_options = {
    "region": _settings.region,
    # The emulator speaks plain HTTP; real SQS endpoints are HTTPS.
    "is_secure": not (_settings.aws_endpoint_url or "").startswith("http://"),
    # The jobs queue's own visibility timeout (provision.py, Terraform's sqs.tf): kombu gives it
    # to the queues it makes, and the worker sets it again on every message it holds, every
    # third of it, until the ack (tasks/sqs_visibility.py). So a step may run longer, and a dead
    # worker's message comes back within it.
    "visibility_timeout": _settings.visibility_timeout_seconds,
    # ...but no longer than any legitimate hold (Settings.hold_limit_seconds): then SQS may
    # hand a wedged worker's message to another.
    "hold_limit_seconds": _settings.hold_limit_seconds,
    # Long polling: SQS holds an empty receive up to this long, so idle workers cost little.
    "wait_time_seconds": _settings.sqs_wait_time_seconds,
    # kombu waits this long after an empty long poll. While every slot is busy the queue is
    # polled again the moment one frees (tasks/sqs_fanout.py: ParkedQueues), and this is only
    # the back-stop; under kombu's own rule a freed slot waited up to this long for its next
    # message (at 0.5 s, 300 jobs on two workers ran 2.4 times slower). A look costs no request.
    "polling_interval": 0.05,
    # The job queue keeps its name; with its URL known, nobody lists or creates it. (Not
    # kombu's predefined_queues: those forbid the per-process control queues below.)
    "job_queues": {_settings.queue_name: _settings.sqs_queue_url},
    # Fanout exchanges (events, remote control) become SNS topics with SQS subscribers.
    "supports_fanout": True,
    # Every queue and topic besides the job queue is named with this prefix (IAM scopes to it).
    "control_prefix": _settings.control_prefix,
    # Each control queue's heartbeat tag; tasks/control_sweep.py deletes the silent ones.
    "control_heartbeat_seconds": _settings.control_heartbeat_seconds,
    # kombu's own boto3 clients (SendMessage, DeleteMessage, ChangeMessageVisibility, SNS) retry
    # as the project's do (storage/bootstrap.py: aws_client), not in botocore's legacy mode.
    "client-config": {
        "connect_timeout": _settings.aws_timeout_seconds,
        "read_timeout": _settings.aws_timeout_seconds,
        "retries": {"total_max_attempts": _settings.aws_max_attempts, "mode": "standard"},
        # One client serves every thread of a process (tasks/sqs_fanout.py: _new_boto_client).
        "max_pool_connections": _settings.aws_pool_connections,
    },
    # Only control queues are ever made by a process; an event or reply older than a minute
    # is worthless, and a queue left by a killed process then holds a minute of messages at most.
    "sqs-creation-attributes": {"MessageRetentionPeriod": "60"},
    # In production Terraform makes the two topics; their ARNs come from settings.
    **(
        {
            "predefined_exchanges": {
                "celeryev": {"arn": _settings.events_topic_arn},
                "celery.pidbox": {"arn": _settings.control_topic_arn},
            }
        }
        if _settings.events_topic_arn and _settings.control_topic_arn
        else {}
    ),
}
# Every step task goes to the one job queue.
task_default_queue = _settings.queue_name
# Keep retrying the broker at start-up instead of exiting when SQS is briefly away.
broker_connection_retry_on_startup = True
# Bounded publish retries: a submission fails fast (503, job marked failed) rather than hang.
task_publish_retry_policy = {"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 1}

# Ack after the step ran, so a worker that dies mid-step leaves the message to be redelivered.
task_acks_late = True
# A worker process killed mid-step (OOM, SIGKILL) also leaves the message for redelivery.
task_reject_on_worker_lost = True
# The job item is the only source of truth; there is no result backend to write to.
task_ignore_result = True
result_backend = None
# One message at a time per process: a slow step never holds others invisible behind it.
worker_prefetch_multiplier = 1
# JSON only: no pickle from a queue anyone with SendMessage could write to.
task_serializer = "json"
accept_content = ["json"]
result_accept_content = ["json"]
# A step that hangs is interrupted (soft: raises in the task) and then killed (hard).
task_soft_time_limit = _settings.step_soft_time_limit_seconds
task_time_limit = _settings.step_time_limit_seconds
# Our own JSON logging is configured on the worker_process_init/setup_logging signals.
worker_hijack_root_logger = False
# Remote control (`celery inspect`, Flower's worker pages) and task events (Flower's task
# pages) travel over SNS -> SQS through tasks.sqs_fanout. Task events start off: Flower turns
# them on while it runs (enable_events), and they go off once it stops asking
# (TASK_EVENTS_SECONDS, tasks/celery_app.py), so an unwatched job publishes none.
worker_enable_remote_control = True
worker_send_task_events = False
# Producers send no task-sent event: a submission must never depend on SNS being up.
task_send_sent_event = False

# Transient AWS errors (DependencyUnavailable: throttling, timeouts, a dependency down) are
# retried by the step task (tasks/steps.py): waits of 1, 2, 4, 8, 10, 10... s, each drawn from
# its upper half (tasks/backoff.py), so 8 retries wait 27.5 s at least and 55 s at most: a 20 s
# outage of any service is ridden out (docs/reliability.md, "Retry budgets"). Anything else
# fails the job at once.
step_retry_policy = {
    "retry_backoff": 1,
    "retry_backoff_max": 10,
    "max_retries": 8,
}

include = ["tasks.steps"]
