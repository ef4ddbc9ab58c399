# Least-privilege security groups: the internet (or alb_ingress_cidrs) reaches
# only the load balancer; the load balancer reaches only the API and Flower
# ports; tasks accept nothing else and talk to AWS APIs over HTTPS only.

resource "aws_security_group" "alb" {
  name        = "${local.prefix}-alb"
  description = "ghost-engine load balancer"
  vpc_id      = var.vpc_id
}

resource "aws_security_group" "service" {
  for_each = local.services

  name        = "${local.prefix}-${each.key}"
  description = "ghost-engine ${each.key} tasks"
  vpc_id      = var.vpc_id
}

resource "aws_vpc_security_group_ingress_rule" "alb_http" {
  #checkov:skip=CKV_AWS_260:The API is public by design; with a certificate port 80 only redirects to HTTPS.
  for_each = toset(var.alb_ingress_cidrs)

  security_group_id = aws_security_group.alb.id
  description       = "HTTP from ${each.value}"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = 80
  to_port           = 80
}

resource "aws_vpc_security_group_ingress_rule" "alb_https" {
  for_each = local.https_enabled ? toset(var.alb_ingress_cidrs) : toset([])

  security_group_id = aws_security_group.alb.id
  description       = "HTTPS from ${each.value}"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

resource "aws_vpc_security_group_ingress_rule" "alb_flower" {
  for_each = toset(var.flower_allowed_cidrs)

  security_group_id = aws_security_group.alb.id
  description       = "Flower from operators at ${each.value}"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = local.flower_port
  to_port           = local.flower_port
}

resource "aws_vpc_security_group_egress_rule" "alb_to_service" {
  for_each = { for name, svc in local.services : name => svc if svc.port != null }

  security_group_id            = aws_security_group.alb.id
  description                  = "To ${each.key} tasks"
  referenced_security_group_id = aws_security_group.service[each.key].id
  ip_protocol                  = "tcp"
  from_port                    = each.value.port
  to_port                      = each.value.port
}

resource "aws_vpc_security_group_ingress_rule" "service_from_alb" {
  for_each = { for name, svc in local.services : name => svc if svc.port != null }

  security_group_id            = aws_security_group.service[each.key].id
  description                  = "From the load balancer"
  referenced_security_group_id = aws_security_group.alb.id
  ip_protocol                  = "tcp"
  from_port                    = each.value.port
  to_port                      = each.value.port
}

# ECR, S3, DynamoDB, SQS, SSM and CloudWatch Logs are all HTTPS endpoints;
# DNS goes to the VPC resolver, which security groups do not filter.
resource "aws_vpc_security_group_egress_rule" "service_https" {
  for_each = local.services

  security_group_id = aws_security_group.service[each.key].id
  description       = "HTTPS to AWS APIs"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}
