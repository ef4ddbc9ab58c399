locals {
  image = "${aws_ecr_repository.app.repository_url}:${var.image_tag}"

  # The settings every process reads (api, worker and flower share one
  # composition root). Values are strings once they reach ECS.
  app_environment = {
    ENV                        = var.env
    AWS_REGION                 = var.aws_region
    JOBS_TABLE_NAME            = aws_dynamodb_table.jobs.name
    ARTIFACTS_BUCKET           = aws_s3_bucket.artifacts.bucket
    QUEUE_NAME                 = aws_sqs_queue.jobs.name
    DEAD_LETTER_QUEUE_NAME     = aws_sqs_queue.jobs_dlq.name
    SQS_QUEUE_URL              = aws_sqs_queue.jobs.url
    BROKER_URL                 = "sqs://" # credentials come from the task role
    CONTROL_PREFIX             = local.control_prefix
    EVENTS_TOPIC_ARN           = aws_sns_topic.events.arn
    CONTROL_TOPIC_ARN          = aws_sns_topic.control.arn
    VISIBILITY_TIMEOUT_SECONDS = var.visibility_timeout_seconds
    PRESIGN_TTL_SECONDS        = var.presign_ttl_seconds
    JOB_TTL_DAYS               = var.job_ttl_days
    LOG_LEVEL                  = var.log_level
    METRICS_NAMESPACE          = local.metrics_namespace
    # aws-embedded-metrics has no Fargate environment; "Local" writes EMF to
    # stdout, which the awslogs driver ships and CloudWatch extracts.
    AWS_EMF_ENVIRONMENT = "Local"
  }

  # Per service: command, size, scaling bounds, settings, and its secrets
  # (name => SSM parameter ARN, only for the service that reads it; ECS
  # resolves them with the execution role when a task starts).
  services = {
    api = {
      command      = ["gunicorn", "-c", "python:api.gunicorn_conf", "--bind", "0.0.0.0:${local.api_port}", "--workers", "2", "api:create_app()"]
      port         = local.api_port
      cpu          = var.api_cpu
      memory       = var.api_memory
      min_count    = var.api_min_count
      max_count    = var.api_max_count
      stop_timeout = 30
      environment  = local.app_environment
      # The operators' endpoints and /internal check X-INTERNAL-TOKEN against it.
      secrets = { INTERNAL_TOKEN = aws_ssm_parameter.internal_token.arn }
      # The load balancer's target group checks /healthz.
      health_check = null
    }

    worker = {
      command   = ["celery", "-A", "tasks", "worker", "--loglevel", "INFO", "--concurrency", "2"]
      port      = null
      cpu       = var.worker_cpu
      memory    = var.worker_memory
      min_count = var.worker_min_count
      max_count = var.worker_max_count
      # SIGTERM starts Celery's warm shutdown: running tasks finish, unstarted
      # ones go back to SQS. 120 s is the Fargate maximum before SIGKILL.
      stop_timeout = 120
      environment  = local.app_environment
      secrets      = {}
      # A worker whose consumer stopped taking messages (alive, silent, the queue untouched)
      # lets its heartbeat go stale (tasks/liveness.py); ECS then replaces the task.
      health_check = {
        command     = ["CMD", "python", "-m", "tasks.liveness"]
        interval    = 30
        timeout     = 10
        retries     = 3
        startPeriod = 60
      }
    }

    flower = {
      command = ["celery", "-A", "tasks", "flower", "--port=${local.flower_port}"]
      port    = local.flower_port
      cpu     = var.flower_cpu
      memory  = var.flower_memory
      # Autoscaling holds Flower at exactly flower_desired_count (min = max).
      min_count    = var.flower_desired_count
      max_count    = var.flower_desired_count
      stop_timeout = 30
      environment  = local.app_environment
      # Read by Flower itself (user:password of its basic auth).
      secrets      = { FLOWER_BASIC_AUTH = aws_ssm_parameter.flower_basic_auth.arn }
      health_check = null
    }
  }

  # Which services sit behind the load balancer (known at plan time), and
  # their target groups (one() is null while Flower's target group is absent).
  load_balanced = {
    api    = true
    worker = false
    flower = local.flower_exposed
  }
  target_group_arns = {
    api    = aws_lb_target_group.api.arn
    worker = null
    flower = one(aws_lb_target_group.flower[*].arn)
  }
}

resource "aws_ecs_cluster" "main" {
  name = local.prefix

  setting {
    name  = "containerInsights"
    value = "enabled"
  }
}

resource "aws_ecs_task_definition" "service" {
  for_each = local.services

  family                   = "${local.prefix}-${each.key}"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = tostring(each.value.cpu)
  memory                   = tostring(each.value.memory)
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task[each.key].arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  # Fargate accepts only these cpu/memory pairs; refuse others at plan time
  # rather than half way through an apply.
  lifecycle {
    precondition {
      condition     = contains(lookup(local.fargate_memory, tostring(each.value.cpu), []), each.value.memory)
      error_message = "${each.key}: ${each.value.memory} MiB is not a Fargate memory size for ${each.value.cpu} CPU units (256: 512-2048; 512: 1024-4096; 1024: 2048-8192; 2048: 4096-16384; 4096: 8192-30720, in 1024 MiB steps)."
    }
  }

  # Scratch space: the root filesystem is read-only. The image declares
  # VOLUME /tmp so Fargate copies its mode (1777) onto this bind mount.
  volume {
    name = "tmp"
  }

  container_definitions = jsonencode([
    {
      name                   = each.key
      image                  = local.image
      essential              = true
      command                = each.value.command
      readonlyRootFilesystem = true
      stopTimeout            = each.value.stop_timeout
      portMappings           = each.value.port == null ? [] : [{ containerPort = each.value.port, protocol = "tcp" }]
      environment            = [for name, value in each.value.environment : { name = name, value = tostring(value) }]
      secrets                = [for name, arn in each.value.secrets : { name = name, valueFrom = arn }]
      mountPoints            = [{ sourceVolume = "tmp", containerPath = "/tmp", readOnly = false }]
      linuxParameters        = { initProcessEnabled = true }
      healthCheck            = each.value.health_check
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = aws_cloudwatch_log_group.service[each.key].name
          awslogs-region        = var.aws_region
          awslogs-stream-prefix = each.key
        }
      }
    },
  ])
}

resource "aws_ecs_service" "service" {
  for_each = local.services

  name             = each.key
  cluster          = aws_ecs_cluster.main.id
  task_definition  = aws_ecs_task_definition.service[each.key].arn
  desired_count    = each.value.min_count
  launch_type      = "FARGATE"
  platform_version = "LATEST"

  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200
  health_check_grace_period_seconds  = local.load_balanced[each.key] ? 30 : null
  enable_ecs_managed_tags            = true
  propagate_tags                     = "SERVICE"

  # A deployment whose tasks never become healthy rolls back to the last
  # working task definition on its own.
  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [aws_security_group.service[each.key].id]
    assign_public_ip = false
  }

  dynamic "load_balancer" {
    for_each = local.load_balanced[each.key] ? [local.target_group_arns[each.key]] : []

    content {
      target_group_arn = load_balancer.value
      container_name   = each.key
      container_port   = each.value.port
    }
  }

  # Application Auto Scaling owns the running count (autoscaling.tf); an apply
  # must not reset it to the minimum in the middle of a busy hour.
  lifecycle {
    ignore_changes = [desired_count]
  }

  # A target group must be attached to a listener before a service can use it.
  depends_on = [
    aws_lb_listener.http,
    aws_lb_listener.https,
    aws_lb_listener.flower,
  ]
}
