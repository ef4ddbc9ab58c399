# One dashboard: jobs and steps (the app's EMF metrics, tasks/metrics.py), the
# queues, the load balancer, and the services' running tasks. Per-step graphs
# use SEARCH, so a step added to the pipeline appears without an edit here.

locals {
  app_metric = {
    namespace = local.metrics_namespace
    service   = local.metrics_service
  }
  step_search = "{${local.metrics_namespace},Service,Step} Service=\"${local.metrics_service}\""

  dashboard_widgets = [
    {
      type = "metric", x = 0, y = 0, width = 12, height = 6
      properties = {
        title  = "Jobs ended, by state (per 5 minutes)"
        view   = "timeSeries"
        region = var.aws_region
        stat   = "Sum"
        period = 300
        metrics = [
          [local.app_metric.namespace, "JobSucceeded", "Service", local.app_metric.service, { label = "done" }],
          [local.app_metric.namespace, "JobFailed", "Service", local.app_metric.service, { label = "failed" }],
          [local.app_metric.namespace, "JobCancelled", "Service", local.app_metric.service, { label = "cancelled" }],
        ]
      }
    },
    {
      type = "metric", x = 12, y = 0, width = 12, height = 6
      properties = {
        title  = "Job duration, creation to done (ms)"
        view   = "timeSeries"
        region = var.aws_region
        period = 300
        metrics = [
          [local.app_metric.namespace, "JobDurationMs", "Service", local.app_metric.service, { stat = "Average", label = "average" }],
          [local.app_metric.namespace, "JobDurationMs", "Service", local.app_metric.service, { stat = "p95", label = "p95" }],
        ]
      }
    },
    {
      type = "metric", x = 0, y = 6, width = 12, height = 6
      properties = {
        title  = "Step duration p95, per step (ms)"
        view   = "timeSeries"
        region = var.aws_region
        metrics = [
          [{ id = "steps", expression = "SEARCH('${local.step_search} MetricName=\"StepDurationMs\"', 'p95', 300)", label = "" }],
        ]
      }
    },
    {
      type = "metric", x = 12, y = 6, width = 12, height = 6
      properties = {
        title  = "Step errors, per step (per 5 minutes)"
        view   = "timeSeries"
        region = var.aws_region
        metrics = [
          [{ id = "errors", expression = "SEARCH('${local.step_search} MetricName=\"StepErrors\"', 'Sum', 300)", label = "" }],
        ]
      }
    },
    {
      type = "metric", x = 0, y = 12, width = 8, height = 6
      properties = {
        title  = "Jobs queue: waiting messages and DLQ depth"
        view   = "timeSeries"
        region = var.aws_region
        stat   = "Maximum"
        period = 60
        metrics = [
          ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", aws_sqs_queue.jobs.name, { label = "waiting" }],
          ["AWS/SQS", "ApproximateNumberOfMessagesNotVisible", "QueueName", aws_sqs_queue.jobs.name, { label = "in flight" }],
          ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", aws_sqs_queue.jobs_dlq.name, { label = "dead letters" }],
        ]
      }
    },
    {
      type = "metric", x = 8, y = 12, width = 8, height = 6
      properties = {
        title  = "Jobs queue: age of the oldest message (s)"
        view   = "timeSeries"
        region = var.aws_region
        stat   = "Maximum"
        period = 60
        metrics = [
          ["AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", aws_sqs_queue.jobs.name, { label = "oldest message" }],
        ]
        annotations = { horizontal = [{ label = "alarm", value = var.queue_age_alarm_seconds }] }
      }
    },
    {
      type = "metric", x = 16, y = 12, width = 8, height = 6
      properties = {
        title  = "Running tasks per service"
        view   = "timeSeries"
        region = var.aws_region
        stat   = "Average"
        period = 60
        metrics = [
          for name in sort(keys(local.services)) :
          ["ECS/ContainerInsights", "RunningTaskCount", "ClusterName", aws_ecs_cluster.main.name, "ServiceName", name, { label = name }]
        ]
      }
    },
    {
      type = "metric", x = 0, y = 18, width = 12, height = 6
      properties = {
        title  = "Load balancer: 5xx answers (per 5 minutes)"
        view   = "timeSeries"
        region = var.aws_region
        stat   = "Sum"
        period = 300
        metrics = [
          ["AWS/ApplicationELB", "HTTPCode_ELB_5XX_Count", "LoadBalancer", aws_lb.main.arn_suffix, { label = "from the load balancer" }],
          ["AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", "LoadBalancer", aws_lb.main.arn_suffix, { label = "from the API" }],
        ]
      }
    },
    {
      type = "metric", x = 12, y = 18, width = 12, height = 6
      properties = {
        title  = "Load balancer: target response time (s)"
        view   = "timeSeries"
        region = var.aws_region
        period = 60
        metrics = [
          ["AWS/ApplicationELB", "TargetResponseTime", "LoadBalancer", aws_lb.main.arn_suffix, { stat = "Average", label = "average" }],
          ["AWS/ApplicationELB", "TargetResponseTime", "LoadBalancer", aws_lb.main.arn_suffix, { stat = "p95", label = "p95" }],
        ]
      }
    },
  ]
}

resource "aws_cloudwatch_dashboard" "main" {
  dashboard_name = local.prefix
  dashboard_body = jsonencode({ widgets = local.dashboard_widgets })
}
