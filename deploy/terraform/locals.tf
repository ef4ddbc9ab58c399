locals {
  project = "ghost-engine"
  prefix  = "${local.project}-${var.env}"

  # What the jobs table's indexes copy beside their keys: storage/dynamo_items.py's
  # INDEXED_ATTRIBUTES, which tests/unit/test_infra.py holds this list to.
  indexed_attributes = [
    "state", "progress", "createdAt", "updatedAt", "request", "resultKeys",
    "artifactKey", "contentType", "size",
  ]

  # Resource names are part of the contract with the application's settings
  # (DESIGN.md): the app is told these names, it never derives or creates them.
  jobs_table_name  = "ghost-engine-jobs-${var.env}"
  artifacts_bucket = "ghost-engine-artifacts-${var.env}"
  queue_name       = "ghost-engine-jobs-${var.env}"
  dlq_name         = "ghost-engine-jobs-dlq-${var.env}"

  # Celery's events and remote control (tasks/sqs_fanout.py): two SNS topics, and the SQS
  # queues each worker and Flower make for themselves and delete at exit, all named with
  # this prefix so IAM can scope to it. At most 23 characters for any valid env (the app
  # allows 24: a reply queue's name adds 56 to it, and SQS stops at 80).
  control_prefix = "ghost-${var.env}-ctl-"

  # Every artifact lives under this prefix; IAM and the lifecycle rule use it.
  artifacts_prefix = "jobs/"

  https_enabled  = var.certificate_arn != ""
  flower_exposed = length(var.flower_allowed_cidrs) > 0

  api_port    = 8000
  flower_port = 5555

  # CloudWatch namespace of the app's EMF metrics (METRICS_NAMESPACE); the
  # dashboard and alarms read the same local.
  metrics_namespace = "GhostEngine"
  metrics_service   = "ghost-engine" # the Service dimension of every metric (tasks.metrics.SERVICE)

  # Fargate's valid memory sizes (MiB) per CPU units.
  fargate_memory = {
    "256"  = [512, 1024, 2048]
    "512"  = range(1024, 4097, 1024)
    "1024" = range(2048, 8193, 1024)
    "2048" = range(4096, 16385, 1024)
    "4096" = range(8192, 30721, 1024)
  }
}
