resource "aws_lb" "main" {
  #checkov:skip=CKV2_AWS_28:WAF is out of scope for this internal-facing job API; add an aws_wafv2_web_acl_association when exposed widely.
  #checkov:skip=CKV_AWS_91:Access logs need a dedicated bucket with the ELB delivery policy; enable them when one exists.
  #checkov:skip=CKV2_AWS_20:The HTTP listener redirects to HTTPS whenever certificate_arn is set; checkov cannot evaluate that condition.
  name                       = local.prefix
  load_balancer_type         = "application"
  internal                   = false
  security_groups            = [aws_security_group.alb.id]
  subnets                    = var.public_subnet_ids
  drop_invalid_header_fields = true
  enable_deletion_protection = var.deletion_protection
  idle_timeout               = 60
}

resource "aws_lb_target_group" "api" {
  #checkov:skip=CKV_AWS_378:TLS ends at the load balancer; targets sit in private subnets and accept only the ALB's security group.
  name                 = "${local.project}-api-${var.env}"
  port                 = local.api_port
  protocol             = "HTTP"
  target_type          = "ip"
  vpc_id               = var.vpc_id
  deregistration_delay = 30

  health_check {
    path                = "/healthz"
    matcher             = "200"
    interval            = 15
    timeout             = 5
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }
}

# Flower's /healthcheck answers without basic auth; every other page needs it.
resource "aws_lb_target_group" "flower" {
  #checkov:skip=CKV_AWS_378:TLS ends at the load balancer; targets sit in private subnets and accept only the ALB's security group.
  count = local.flower_exposed ? 1 : 0

  name                 = "${local.project}-flower-${var.env}"
  port                 = local.flower_port
  protocol             = "HTTP"
  target_type          = "ip"
  vpc_id               = var.vpc_id
  deregistration_delay = 10

  health_check {
    path                = "/healthcheck"
    matcher             = "200"
    interval            = 30
    timeout             = 5
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }
}

resource "aws_lb_listener" "http" {
  #checkov:skip=CKV_AWS_2:Plain HTTP serves the API only while no certificate_arn is set; with one, this listener redirects to HTTPS.
  #checkov:skip=CKV_AWS_103:TLS policy applies to the HTTPS listener, which uses ELBSecurityPolicy-TLS13-1-2-2021-06.
  load_balancer_arn = aws_lb.main.arn
  port              = 80
  protocol          = "HTTP"

  dynamic "default_action" {
    for_each = local.https_enabled ? [] : [1]

    content {
      type             = "forward"
      target_group_arn = aws_lb_target_group.api.arn
    }
  }

  dynamic "default_action" {
    for_each = local.https_enabled ? [1] : []

    content {
      type = "redirect"

      redirect {
        port        = "443"
        protocol    = "HTTPS"
        status_code = "HTTP_301"
      }
    }
  }
}

resource "aws_lb_listener" "https" {
  count = local.https_enabled ? 1 : 0

  load_balancer_arn = aws_lb.main.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = var.certificate_arn

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.api.arn
  }

  lifecycle {
    precondition {
      condition     = var.domain_name != ""
      error_message = "Set domain_name (a name the certificate covers, pointing at the load balancer) when certificate_arn is set."
    }
  }
}

# Flower gets its own port so its basic-auth UI never shares a path space with
# the API, and only flower_allowed_cidrs can reach it (see network.tf).
# HTTPS only: flower_allowed_cidrs is refused without certificate_arn.
resource "aws_lb_listener" "flower" {
  count = local.flower_exposed ? 1 : 0

  load_balancer_arn = aws_lb.main.arn
  port              = local.flower_port
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = var.certificate_arn

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.flower[0].arn
  }
}
