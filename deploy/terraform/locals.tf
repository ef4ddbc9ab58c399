locals {
  project = "ghost-engine"
  prefix  = "${local.project}-${var.env}"

  # Resource names are part of the contract with the application's settings
  # (DESIGN.md): the app is told these names, it never derives or creates them.
  jobs_table_name  = "ghost-engine-jobs-${var.env}"
  artifacts_bucket = "ghost-engine-artifacts-${var.env}"
  queue_name       = "ghost-engine-jobs-${var.env}"
  dlq_name         = "ghost-engine-jobs-dlq-${var.env}"

  # Every artifact lives under this prefix; IAM and the lifecycle rule use it.
  artifacts_prefix = "jobs/"

  https_enabled  = var.certificate_arn != ""
  flower_exposed = length(var.flower_allowed_cidrs) > 0

  api_port    = 8000
  flower_port = 5555
}
