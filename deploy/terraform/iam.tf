# Two kinds of role (ECS uses them for different things):
# - the execution role lets the ECS agent pull the image, write logs and
#   resolve the task definition's `secrets`;
# - one task role per service holds what that service's code may do.

data "aws_iam_policy_document" "ecs_tasks_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }

    # Confused-deputy guard: only ECS acting for this account may assume it.
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }

    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${data.aws_partition.current.partition}:ecs:${var.aws_region}:${data.aws_caller_identity.current.account_id}:*"]
    }
  }
}

# --- execution role ----------------------------------------------------------

resource "aws_iam_role" "execution" {
  name               = "${local.prefix}-execution"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

data "aws_iam_policy_document" "execution" {
  statement {
    sid = "EcrAuth"
    # GetAuthorizationToken has no resource-level permissions.
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }

  statement {
    sid = "EcrPull"
    actions = [
      "ecr:BatchCheckLayerAvailability",
      "ecr:BatchGetImage",
      "ecr:GetDownloadUrlForLayer",
    ]
    resources = [aws_ecr_repository.app.arn]
  }

  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = [for group in aws_cloudwatch_log_group.service : "${group.arn}:*"]
  }

  statement {
    sid     = "Secrets"
    actions = ["ssm:GetParameters"]
    resources = [
      aws_ssm_parameter.internal_token.arn,
      aws_ssm_parameter.flower_basic_auth.arn,
    ]
  }
}

resource "aws_iam_role_policy" "execution" {
  name   = "execution"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution.json
}

# --- task roles --------------------------------------------------------------

resource "aws_iam_role" "task" {
  for_each = local.services

  name               = "${local.prefix}-${each.key}-task"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

# Job items and artifacts, for the API (create jobs, record steps, presign
# downloads) and the worker (checkpoint steps, write results).
data "aws_iam_policy_document" "job_data" {
  statement {
    sid = "JobsTable"
    actions = [
      "dynamodb:BatchGetItem",
      "dynamodb:ConditionCheckItem",
      "dynamodb:DescribeTable",
      "dynamodb:GetItem",
      "dynamodb:PutItem",
      "dynamodb:Query",
      "dynamodb:UpdateItem",
    ]
    resources = [
      aws_dynamodb_table.jobs.arn,
      "${aws_dynamodb_table.jobs.arn}/index/GSI1",
      "${aws_dynamodb_table.jobs.arn}/index/GSI2",
    ]
  }

  statement {
    sid       = "Artifacts"
    actions   = ["s3:GetObject", "s3:PutObject"]
    resources = ["${aws_s3_bucket.artifacts.arn}/${local.artifacts_prefix}*"]
  }

  # Without ListBucket, S3 answers a GET of a missing key with 403 instead of
  # 404, and "artifact not there yet" would look like a permissions error.
  statement {
    sid       = "ArtifactsList"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.artifacts.arn]
  }
}

data "aws_iam_policy_document" "api_queue" {
  statement {
    sid       = "Dispatch"
    actions   = ["sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:SendMessage"]
    resources = [aws_sqs_queue.jobs.arn]
  }

  statement {
    sid       = "DeadLetterDepth"
    actions   = ["sqs:GetQueueAttributes", "sqs:GetQueueUrl"]
    resources = [aws_sqs_queue.jobs_dlq.arn]
  }
}

data "aws_iam_policy_document" "worker_queue" {
  # A chain's next step is sent by the worker that finished the previous one.
  statement {
    sid = "Consume"
    actions = [
      "sqs:ChangeMessageVisibility",
      "sqs:DeleteMessage",
      "sqs:GetQueueAttributes",
      "sqs:GetQueueUrl",
      "sqs:ReceiveMessage",
      "sqs:SendMessage",
    ]
    resources = [aws_sqs_queue.jobs.arn]
  }

  statement {
    sid       = "DeadLetterDepth"
    actions   = ["sqs:GetQueueAttributes", "sqs:GetQueueUrl"]
    resources = [aws_sqs_queue.jobs_dlq.arn]
  }
}

# Flower only inspects the broker.
data "aws_iam_policy_document" "flower_queue" {
  statement {
    sid       = "Inspect"
    actions   = ["sqs:GetQueueAttributes", "sqs:GetQueueUrl"]
    resources = [aws_sqs_queue.jobs.arn, aws_sqs_queue.jobs_dlq.arn]
  }
}

locals {
  task_queue_policies = {
    api    = data.aws_iam_policy_document.api_queue.json
    worker = data.aws_iam_policy_document.worker_queue.json
    flower = data.aws_iam_policy_document.flower_queue.json
  }
}

resource "aws_iam_role_policy" "task_queue" {
  for_each = local.services

  name   = "queue"
  role   = aws_iam_role.task[each.key].id
  policy = local.task_queue_policies[each.key]
}

# Events and remote control, for the worker and Flower: each makes, uses and deletes its
# own queues (pidbox, reply, event), named with the control prefix, subscribes them to the
# two topics and publishes to them. No ListQueues/ListSubscriptions: lookups are exact.
data "aws_iam_policy_document" "control" {
  statement {
    sid = "ControlQueues"
    actions = [
      "sqs:ChangeMessageVisibility",
      "sqs:CreateQueue",
      "sqs:DeleteMessage",
      "sqs:DeleteQueue",
      "sqs:GetQueueAttributes",
      "sqs:GetQueueUrl",
      "sqs:ReceiveMessage",
      "sqs:SendMessage",
      "sqs:SetQueueAttributes",
    ]
    resources = ["arn:${data.aws_partition.current.partition}:sqs:${var.aws_region}:${data.aws_caller_identity.current.account_id}:${local.control_prefix}*"]
  }

  statement {
    sid       = "ControlTopics"
    actions   = ["sns:ListSubscriptionsByTopic", "sns:Publish", "sns:Subscribe", "sns:Unsubscribe"]
    resources = [aws_sns_topic.events.arn, aws_sns_topic.control.arn]
  }
}

resource "aws_iam_role_policy" "task_control" {
  for_each = toset(["worker", "flower"])

  name   = "control"
  role   = aws_iam_role.task[each.key].id
  policy = data.aws_iam_policy_document.control.json
}

resource "aws_iam_role_policy" "task_job_data" {
  for_each = toset(["api", "worker"])

  name   = "job-data"
  role   = aws_iam_role.task[each.key].id
  policy = data.aws_iam_policy_document.job_data.json
}
