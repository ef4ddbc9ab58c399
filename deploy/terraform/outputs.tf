output "api_url" {
  description = "Base URL of the API (no trailing slash), for the smoke test and clients."
  value       = local.https_enabled ? "https://${var.domain_name}" : "http://${aws_lb.main.dns_name}"
}

output "flower_url" {
  description = "Flower's URL, reachable from flower_allowed_cidrs only; null when Flower is not exposed."
  value       = local.flower_exposed ? "https://${var.domain_name}:${local.flower_port}" : null
}

output "alb_dns_name" {
  description = "DNS name of the load balancer (point domain_name at it)."
  value       = aws_lb.main.dns_name
}

output "ecr_repository_url" {
  description = "ECR repository the deploy workflow pushes the image to."
  value       = aws_ecr_repository.app.repository_url
}

output "ecs_cluster_name" {
  description = "ECS cluster name, for `aws ecs wait services-stable --cluster`."
  value       = aws_ecs_cluster.main.name
}

output "ecs_service_names" {
  description = "ECS service names, for `aws ecs wait services-stable --services`."
  value       = [for service in aws_ecs_service.service : service.name]
}

output "ecs_task_definition_arns" {
  description = "Service name => the task definition ARN this apply registered; the deploy checks each service's PRIMARY deployment runs it."
  value       = { for name, definition in aws_ecs_task_definition.service : name => definition.arn }
}

output "alarms_topic_arn" {
  description = "SNS topic every alarm notifies; subscribe a pager, chat or e-mail endpoint to it."
  value       = aws_sns_topic.alarms.arn
}

output "dashboard_name" {
  description = "CloudWatch dashboard of jobs, steps, queues, the load balancer and the services."
  value       = aws_cloudwatch_dashboard.main.dashboard_name
}

output "jobs_table_name" {
  description = "DynamoDB jobs table (JOBS_TABLE_NAME)."
  value       = aws_dynamodb_table.jobs.name
}

output "artifacts_bucket" {
  description = "S3 artifacts bucket (ARTIFACTS_BUCKET)."
  value       = aws_s3_bucket.artifacts.bucket
}

output "queue_name" {
  description = "SQS jobs queue (QUEUE_NAME)."
  value       = aws_sqs_queue.jobs.name
}

output "queue_url" {
  description = "SQS jobs queue URL (SQS_QUEUE_URL)."
  value       = aws_sqs_queue.jobs.url
}

output "dlq_name" {
  description = "SQS dead-letter queue for jobs messages."
  value       = aws_sqs_queue.jobs_dlq.name
}

output "dlq_url" {
  description = "SQS dead-letter queue URL."
  value       = aws_sqs_queue.jobs_dlq.url
}

output "internal_token_parameter" {
  description = "SSM parameter holding INTERNAL_TOKEN."
  value       = aws_ssm_parameter.internal_token.name
}

output "flower_basic_auth_parameter" {
  description = "SSM parameter holding FLOWER_BASIC_AUTH (user:password)."
  value       = aws_ssm_parameter.flower_basic_auth.name
}
