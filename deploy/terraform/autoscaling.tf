# Capacity follows the work (docs/deploy.md says where it stops). Application
# Auto Scaling owns each service's running count between its min and max;
# Flower's min and max are both flower_desired_count.

resource "aws_appautoscaling_target" "service" {
  for_each = local.services

  service_namespace  = "ecs"
  resource_id        = "service/${aws_ecs_cluster.main.name}/${aws_ecs_service.service[each.key].name}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = each.value.min_count
  max_capacity       = each.value.max_count
}

# Workers: about worker_messages_per_task messages waiting per running task.
# A step takes about a second, so the default of 10 is roughly ten seconds of
# backlog per task before another one starts.
resource "aws_appautoscaling_policy" "worker_backlog" {
  name               = "${local.prefix}-worker-backlog"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.service["worker"].service_namespace
  resource_id        = aws_appautoscaling_target.service["worker"].resource_id
  scalable_dimension = aws_appautoscaling_target.service["worker"].scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value = var.worker_messages_per_task
    # Out quickly; in slowly, since a worker stopping mid-burst hands its
    # unacknowledged messages back only after the visibility timeout.
    scale_out_cooldown = 60
    scale_in_cooldown  = 300

    customized_metric_specification {
      metrics {
        id          = "backlog"
        label       = "Visible messages in the jobs queue"
        return_data = false

        metric_stat {
          stat = "Average"

          metric {
            namespace   = "AWS/SQS"
            metric_name = "ApproximateNumberOfMessagesVisible"

            dimensions {
              name  = "QueueName"
              value = aws_sqs_queue.jobs.name
            }
          }
        }
      }

      metrics {
        id          = "tasks"
        label       = "Running worker tasks"
        return_data = false

        metric_stat {
          stat = "Average"

          metric {
            namespace   = "ECS/ContainerInsights"
            metric_name = "RunningTaskCount"

            dimensions {
              name  = "ClusterName"
              value = aws_ecs_cluster.main.name
            }

            dimensions {
              name  = "ServiceName"
              value = aws_ecs_service.service["worker"].name
            }
          }
        }
      }

      # With no running task there is no data (and the running-below-desired
      # alarm fires); worker_min_count >= 1 keeps that an outage, not a state.
      metrics {
        id          = "backlog_per_task"
        label       = "Visible messages per running worker task"
        expression  = "backlog / tasks"
        return_data = true
      }
    }
  }
}

# API: about api_requests_per_target load balancer requests per task per minute.
resource "aws_appautoscaling_policy" "api_requests" {
  name               = "${local.prefix}-api-requests"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.service["api"].service_namespace
  resource_id        = aws_appautoscaling_target.service["api"].resource_id
  scalable_dimension = aws_appautoscaling_target.service["api"].scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value       = var.api_requests_per_target
    scale_out_cooldown = 60
    scale_in_cooldown  = 300

    predefined_metric_specification {
      predefined_metric_type = "ALBRequestCountPerTarget"
      resource_label         = "${aws_lb.main.arn_suffix}/${aws_lb_target_group.api.arn_suffix}"
    }
  }
}
