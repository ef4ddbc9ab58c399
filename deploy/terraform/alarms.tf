# Alarms, all to one SNS topic (alarms_topic_arn output; alarm_email subscribes
# an address). CloudWatch cannot publish to a topic encrypted with the AWS
# managed key (aws/sns): its key policy does not admit CloudWatch, and cannot
# be changed. So the topic has a key of its own that does.

resource "aws_kms_key" "alarms" {
  description         = "${local.prefix} alarms topic: lets CloudWatch publish encrypted alarm notifications"
  enable_key_rotation = true
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "AccountAdministers"
        Effect    = "Allow"
        Principal = { AWS = "arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root" }
        Action    = "kms:*"
        Resource  = "*"
      },
      {
        Sid       = "CloudWatchPublishes"
        Effect    = "Allow"
        Principal = { Service = "cloudwatch.amazonaws.com" }
        Action    = ["kms:Decrypt", "kms:GenerateDataKey*"]
        Resource  = "*"
        Condition = { StringEquals = { "aws:SourceAccount" = data.aws_caller_identity.current.account_id } }
      },
    ]
  })
}

resource "aws_sns_topic" "alarms" {
  name              = "${local.prefix}-alarms"
  kms_master_key_id = aws_kms_key.alarms.arn
}

resource "aws_sns_topic_policy" "alarms" {
  arn = aws_sns_topic.alarms.arn
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "CloudWatchAlarmsPublish"
      Effect    = "Allow"
      Principal = { Service = "cloudwatch.amazonaws.com" }
      Action    = "sns:Publish"
      Resource  = aws_sns_topic.alarms.arn
      Condition = { StringEquals = { "aws:SourceAccount" = data.aws_caller_identity.current.account_id } }
    }]
  })
}

resource "aws_sns_topic_subscription" "alarm_email" {
  count = var.alarm_email == "" ? 0 : 1

  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = var.alarm_email
}

locals {
  alarm_actions = [aws_sns_topic.alarms.arn]
}

# Errors the load balancer or the API answered. Both metrics are absent while
# they are zero, hence FILL.
resource "aws_cloudwatch_metric_alarm" "alb_5xx" {
  alarm_name          = "${local.prefix}-alb-5xx"
  alarm_description   = "The load balancer or the API answered 5xx more than ${var.alb_5xx_alarm_count} times in 5 minutes."
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.alb_5xx_alarm_count
  evaluation_periods  = 1
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  metric_query {
    id          = "errors"
    expression  = "FILL(elb, 0) + FILL(target, 0)"
    label       = "5xx answers"
    return_data = true
  }

  dynamic "metric_query" {
    for_each = { elb = "HTTPCode_ELB_5XX_Count", target = "HTTPCode_Target_5XX_Count" }

    content {
      id = metric_query.key

      metric {
        namespace   = "AWS/ApplicationELB"
        metric_name = metric_query.value
        dimensions  = { LoadBalancer = aws_lb.main.arn_suffix }
        period      = 300
        stat        = "Sum"
      }
    }
  }
}

# A service that cannot keep its tasks running (crash loop, failing health
# check, no capacity) for five minutes in a row. Not for a service scaled to
# zero (Flower, optionally), which Container Insights does not report.
resource "aws_cloudwatch_metric_alarm" "running_below_desired" {
  for_each = { for name, service in local.services : name => service if service.min_count > 0 }

  alarm_name          = "${local.prefix}-${each.key}-running-below-desired"
  alarm_description   = "The ${each.key} service has run fewer tasks than desired for 5 minutes."
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = 1
  evaluation_periods  = 5
  datapoints_to_alarm = 5
  treat_missing_data  = "breaching" # Container Insights stops reporting a service with no task
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  metric_query {
    id          = "missing"
    expression  = "desired - running"
    label       = "Desired minus running ${each.key} tasks"
    return_data = true
  }

  dynamic "metric_query" {
    for_each = { desired = "DesiredTaskCount", running = "RunningTaskCount" }

    content {
      id = metric_query.key

      metric {
        namespace   = "ECS/ContainerInsights"
        metric_name = metric_query.value
        dimensions  = { ClusterName = aws_ecs_cluster.main.name, ServiceName = aws_ecs_service.service[each.key].name }
        period      = 60
        stat        = "Average"
      }
    }
  }
}

# A message in the DLQ is a step that failed delivery five times: a job that
# the stall sweeper will fail unless someone looks.
resource "aws_cloudwatch_metric_alarm" "dlq_not_empty" {
  alarm_name          = "${local.prefix}-dlq-not-empty"
  alarm_description   = "Messages are waiting in ${aws_sqs_queue.jobs_dlq.name} (see docs/operations.md)."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = aws_sqs_queue.jobs_dlq.name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "queue_oldest_message" {
  alarm_name          = "${local.prefix}-queue-oldest-message"
  alarm_description   = "A message has waited in ${aws_sqs_queue.jobs.name} longer than ${var.queue_age_alarm_seconds} s: workers are not keeping up, or none consumes."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateAgeOfOldestMessage"
  dimensions          = { QueueName = aws_sqs_queue.jobs.name }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.queue_age_alarm_seconds
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

# The share of the jobs that ended in 15 minutes which failed (the app's own
# EMF metrics, tasks/metrics.py). JobFailed is absent while zero, hence FILL;
# with no job at all the rate has no data, which is not an alarm.
resource "aws_cloudwatch_metric_alarm" "job_failure_rate" {
  alarm_name          = "${local.prefix}-job-failure-rate"
  alarm_description   = "More than ${var.job_failure_rate_alarm_percent}% of the jobs that ended in 15 minutes failed."
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.job_failure_rate_alarm_percent
  evaluation_periods  = 1
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  metric_query {
    id          = "rate"
    expression  = "100 * FILL(failed, 0) / (FILL(failed, 0) + FILL(succeeded, 0))"
    label       = "Failed jobs (%)"
    return_data = true
  }

  dynamic "metric_query" {
    for_each = { failed = "JobFailed", succeeded = "JobSucceeded" }

    content {
      id = metric_query.key

      metric {
        namespace   = local.metrics_namespace
        metric_name = metric_query.value
        dimensions  = { Service = local.metrics_service }
        period      = 900
        stat        = "Sum"
      }
    }
  }
}
