resource "aws_cloudwatch_log_group" "service" {
  #checkov:skip=CKV_AWS_158:Log data is encrypted by CloudWatch Logs by default; a customer managed key adds a key policy for no consumer.
  #checkov:skip=CKV_AWS_338:Application logs are operational, not audit records; log_retention_days (default 30) keeps cost bounded.
  for_each = toset(keys(local.services))

  name              = "/ecs/${local.prefix}/${each.key}"
  retention_in_days = var.log_retention_days
}
