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

# What each service's code calls, and nothing else: docs/deploy.md lists the
# actions per service, and tests/unit/test_infra.py holds the two together.

locals {
  jobs_table_resources = [
    aws_dynamodb_table.jobs.arn,
    "${aws_dynamodb_table.jobs.arn}/index/GSI1",
    "${aws_dynamodb_table.jobs.arn}/index/GSI2",
  ]
  artifact_objects   = "${aws_s3_bucket.artifacts.arn}/${local.artifacts_prefix}*"
  control_queues_arn = "arn:${data.aws_partition.current.partition}:sqs:${var.aws_region}:${data.aws_caller_identity.current.account_id}:${local.control_prefix}*"
  control_topic_arns = [aws_sns_topic.events.arn, aws_sns_topic.control.arn]
}

# The API creates jobs, reads and lists them, records steps and operators'
# retries and cancels, presigns artifact downloads and sends a job's chain.
# It never writes an artifact.
data "aws_iam_policy_document" "api" {
  statement {
    sid = "JobsTable"
    actions = [
      "dynamodb:DescribeTable", # /readyz
      "dynamodb:GetItem",
      "dynamodb:PutItem",
      "dynamodb:Query",
      "dynamodb:UpdateItem",
    ]
    resources = local.jobs_table_resources
  }

  # A presigned URL carries the signer's permissions: the API signs GETs only.
  statement {
    sid       = "ReadArtifacts"
    actions   = ["s3:GetObject"]
    resources = [local.artifact_objects]
  }

  # HeadBucket (/readyz) needs ListBucket; without it S3 also answers a missing
  # key with 403 instead of 404.
  statement {
    sid       = "ArtifactsBucket"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.artifacts.arn]
  }

  statement {
    sid       = "Dispatch"
    actions   = ["sqs:GetQueueAttributes", "sqs:SendMessage"] # /readyz, a job's first message
    resources = [aws_sqs_queue.jobs.arn]
  }
}

# The worker runs steps: reads and updates job items (and lists stalled ones),
# reads and writes checkpoints and artifacts, consumes the queue and sends a
# chain's next step; it also sweeps the control queues dead processes left.
data "aws_iam_policy_document" "worker" {
  source_policy_documents = [data.aws_iam_policy_document.control.json]

  # A step reads the job item through its claim (UpdateItem returning the old item),
  # or from its message. GetItem: the stall sweeper reads each stalled job it found on
  # the state index (Query), which copies only what listings read, and a step sent on
  # without its checkpoint reads the one the item keeps.
  statement {
    sid       = "JobsTable"
    actions   = ["dynamodb:GetItem", "dynamodb:Query", "dynamodb:UpdateItem"]
    resources = local.jobs_table_resources
  }

  statement {
    sid       = "Artifacts"
    actions   = ["s3:GetObject", "s3:PutObject"]
    resources = [local.artifact_objects]
  }

  statement {
    sid       = "ArtifactsBucket"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.artifacts.arn]
  }

  # ChangeMessageVisibility also authorises ChangeMessageVisibilityBatch (SQS's
  # batch actions take their single action's permission): the worker extends the
  # messages it holds with it (tasks/sqs_visibility.py).
  statement {
    sid = "Consume"
    actions = [
      "sqs:ChangeMessageVisibility",
      "sqs:DeleteMessage",
      "sqs:GetQueueAttributes",
      "sqs:ReceiveMessage",
      "sqs:SendMessage",
    ]
    resources = [aws_sqs_queue.jobs.arn]
  }

  # tasks/control_sweep.py: read the control queues' heartbeat tags, delete the
  # stale ones (ControlQueues) and their subscriptions (ControlTopics).
  statement {
    sid       = "SweepControlQueues"
    actions   = ["sqs:ListQueueTags"]
    resources = [local.control_queues_arn]
  }

  # ... which it finds with ListQueues(QueueNamePrefix = the control prefix).
  # The IAM reference gives ListQueues no resource type, so it is granted on
  # "*": it reveals queue names and URLs only, never a message or attribute.
  statement {
    sid       = "ListControlQueues"
    actions   = ["sqs:ListQueues"]
    resources = ["*"]
  }
}

# Flower only takes part in events and remote control.
data "aws_iam_policy_document" "flower" {
  source_policy_documents = [data.aws_iam_policy_document.control.json]
}

# Events and remote control, for the worker and Flower: each makes, uses, tags
# (heartbeat) and deletes its own queues (pidbox, reply, event), named with the
# control prefix, subscribes them to the two topics and publishes to them.
data "aws_iam_policy_document" "control" {
  statement {
    sid = "ControlQueues"
    actions = [
      "sqs:CreateQueue",
      "sqs:DeleteMessage",
      "sqs:DeleteQueue",
      "sqs:GetQueueAttributes",
      "sqs:GetQueueUrl",
      "sqs:ReceiveMessage",
      "sqs:SendMessage",
      "sqs:SetQueueAttributes",
      "sqs:TagQueue",
    ]
    resources = [local.control_queues_arn]
  }

  statement {
    sid       = "ControlTopics"
    actions   = ["sns:ListSubscriptionsByTopic", "sns:Publish", "sns:Unsubscribe"]
    resources = local.control_topic_arns
  }

  # Only this prefix's SQS queues may be subscribed: never an HTTP or e-mail
  # endpoint, never another queue.
  statement {
    sid       = "SubscribeControlQueues"
    actions   = ["sns:Subscribe"]
    resources = local.control_topic_arns

    condition {
      test     = "StringEquals"
      variable = "sns:Protocol"
      values   = ["sqs"]
    }

    condition {
      test     = "StringLike"
      variable = "sns:Endpoint"
      values   = [local.control_queues_arn]
    }
  }
}

locals {
  task_policies = {
    api    = data.aws_iam_policy_document.api.json
    worker = data.aws_iam_policy_document.worker.json
    flower = data.aws_iam_policy_document.flower.json
  }
}

resource "aws_iam_role_policy" "task" {
  for_each = local.services

  name   = "task"
  role   = aws_iam_role.task[each.key].id
  policy = local.task_policies[each.key]
}
