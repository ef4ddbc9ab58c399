# Plan-level tests with a mocked AWS provider: no credentials, no network, no emulator.
# `terraform test` (from deploy/terraform, after `terraform init -backend=false`) runs them;
# so does `make deploy-check`. Each run plans with the variables below plus its own.

mock_provider "aws" {
  mock_data "aws_caller_identity" {
    defaults = { account_id = "123456789012" }
  }

  mock_data "aws_partition" {
    defaults = { partition = "aws" }
  }

  mock_data "aws_iam_policy_document" {
    defaults = { json = "{}" }
  }
}

variables {
  env                = "prod"
  aws_region         = "eu-west-1"
  vpc_id             = "vpc-0123456789abcdef0"
  public_subnet_ids  = ["subnet-0aaaaaaaaaaaaaaaa", "subnet-0bbbbbbbbbbbbbbbb"]
  private_subnet_ids = ["subnet-0cccccccccccccccc"]
  image_tag          = "0123456789abcdef0123456789abcdef01234567"
}

run "defaults_plan" {
  command = plan

  assert {
    condition     = aws_ecs_service.service["worker"].desired_count == 2 && aws_appautoscaling_target.service["worker"].max_capacity == 20
    error_message = "the worker starts at worker_min_count and may grow to worker_max_count"
  }

  assert {
    condition     = aws_appautoscaling_target.service["flower"].min_capacity == 1 && aws_appautoscaling_target.service["flower"].max_capacity == 1
    error_message = "Flower is held at flower_desired_count"
  }

  assert {
    condition     = length(aws_lb_listener.flower) == 0 && length(aws_lb_listener.https) == 0
    error_message = "without a certificate there is no HTTPS listener and Flower is not exposed"
  }

  assert {
    condition     = length(aws_sns_topic_subscription.alarm_email) == 0
    error_message = "no e-mail subscription without alarm_email"
  }

  assert {
    condition     = toset(keys(aws_cloudwatch_metric_alarm.running_below_desired)) == toset(["api", "worker", "flower"])
    error_message = "every running service has a running-below-desired alarm"
  }
}

run "flower_scaled_to_zero_has_no_running_alarm" {
  command = plan

  variables {
    flower_desired_count = 0
  }

  assert {
    condition     = !contains(keys(aws_cloudwatch_metric_alarm.running_below_desired), "flower")
    error_message = "a service scaled to zero must not alarm for running below desired"
  }
}

run "env_ending_with_a_hyphen_is_refused" {
  command = plan

  variables {
    env = "dev-"
  }

  expect_failures = [var.env]
}

run "env_with_capitals_is_refused" {
  command = plan

  variables {
    env = "Dev"
  }

  expect_failures = [var.env]
}

run "env_longer_than_target_group_names_allow_is_refused" {
  command = plan

  variables {
    env = "abcdefghijklm"
  }

  expect_failures = [var.env]
}

run "env_giving_a_reserved_bucket_suffix_is_refused" {
  command = plan

  variables {
    env = "s3alias"
  }

  expect_failures = [var.env]
}

run "longest_env_is_accepted" {
  command = plan

  variables {
    env = "abcdefghij-1"
  }

  assert {
    condition     = length("${aws_lb_target_group.api.name}") <= 32
    error_message = "target group names stop at 32 characters"
  }
}

run "api_memory_not_paired_with_its_cpu_is_refused" {
  command = plan

  variables {
    api_cpu    = 256
    api_memory = 4096
  }

  expect_failures = [aws_ecs_task_definition.service]
}

run "worker_memory_below_its_cpu_range_is_refused" {
  command = plan

  variables {
    worker_cpu    = 1024
    worker_memory = 1024
  }

  expect_failures = [aws_ecs_task_definition.service]
}

run "largest_fargate_pair_is_accepted" {
  command = plan

  variables {
    worker_cpu    = 4096
    worker_memory = 30720
  }
}

run "https_without_a_domain_is_refused" {
  command = plan

  variables {
    certificate_arn = "arn:aws:acm:eu-west-1:123456789012:certificate/00000000-0000-0000-0000-000000000000"
  }

  expect_failures = [aws_lb_listener.https]
}

run "flower_exposed_without_a_certificate_is_refused" {
  command = plan

  variables {
    flower_allowed_cidrs = ["203.0.113.0/24"]
  }

  expect_failures = [var.flower_allowed_cidrs]
}

run "flower_exposed_to_everyone_is_refused" {
  command = plan

  variables {
    certificate_arn      = "arn:aws:acm:eu-west-1:123456789012:certificate/00000000-0000-0000-0000-000000000000"
    domain_name          = "ghost.example.com"
    flower_allowed_cidrs = ["0.0.0.0/0"]
  }

  expect_failures = [var.flower_allowed_cidrs]
}

run "flower_exposed_with_a_certificate_is_https" {
  command = plan

  variables {
    certificate_arn      = "arn:aws:acm:eu-west-1:123456789012:certificate/00000000-0000-0000-0000-000000000000"
    domain_name          = "ghost.example.com"
    flower_allowed_cidrs = ["203.0.113.0/24"]
  }

  assert {
    condition     = aws_lb_listener.flower[0].protocol == "HTTPS" && output.flower_url == "https://ghost.example.com:5555"
    error_message = "Flower is served over HTTPS only"
  }
}

run "worker_max_below_min_is_refused" {
  command = plan

  variables {
    worker_min_count = 4
    worker_max_count = 2
  }

  expect_failures = [var.worker_max_count]
}

run "latest_image_tag_is_refused" {
  command = plan

  variables {
    image_tag = "latest"
  }

  expect_failures = [var.image_tag]
}

run "alarm_email_subscribes_when_set" {
  command = plan

  variables {
    alarm_email = "oncall@example.com"
  }

  assert {
    condition     = aws_sns_topic_subscription.alarm_email[0].endpoint == "oncall@example.com"
    error_message = "alarm_email subscribes to the alarms topic"
  }
}

run "short_visibility_timeout_reaches_the_queue_and_the_tasks" {
  command = plan

  assert {
    condition     = aws_sqs_queue.jobs.visibility_timeout_seconds == 15 && tostring(local.app_environment["VISIBILITY_TIMEOUT_SECONDS"]) == "15"
    error_message = "the jobs queue and every task get the same, short visibility timeout (the worker extends it while it holds a message)"
  }
}

run "visibility_timeout_below_the_extension_floor_is_refused" {
  command = plan

  variables {
    visibility_timeout_seconds = 4
  }

  expect_failures = [var.visibility_timeout_seconds]
}

run "presign_ttl_that_is_not_a_whole_number_is_refused" {
  command = plan

  variables {
    presign_ttl_seconds = 900.5
  }

  # The app reads PRESIGN_TTL_SECONDS as an integer and would refuse to start.
  expect_failures = [var.presign_ttl_seconds]
}
