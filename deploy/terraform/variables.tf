variable "env" {
  description = "Environment name, part of every resource name (ghost-engine-jobs-<env>). Short so ALB and target group names stay within 32 characters."
  type        = string

  # AWS's own rules, checked before any call: target group names (the longest,
  # "ghost-engine-flower-<env>") stop at 32 characters; load balancer, target
  # group and bucket names may not end with a hyphen; S3 reserves the bucket
  # name suffixes "-s3alias", "--ol-s3" and "--x-s3".
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,10}[a-z0-9]$", var.env)) && !can(regex("(^|-)s3alias$|--(ol|x)-s3$", var.env))
    error_message = "env must be 2-12 characters of lower-case letters, digits and hyphens, starting with a letter, not ending with a hyphen, and not giving a bucket name S3 reserves (ending -s3alias, --ol-s3 or --x-s3)."
  }
}

variable "aws_region" {
  description = "AWS region to deploy into, e.g. eu-west-1."
  type        = string

  validation {
    condition     = can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.aws_region))
    error_message = "aws_region must look like eu-west-1."
  }
}

variable "vpc_id" {
  description = "ID of the existing VPC that hosts the load balancer and the tasks."
  type        = string

  validation {
    condition     = can(regex("^vpc-[0-9a-f]+$", var.vpc_id))
    error_message = "vpc_id must look like vpc-0123456789abcdef0."
  }
}

variable "public_subnet_ids" {
  description = "Public subnets (at least two availability zones) for the internet-facing load balancer."
  type        = list(string)

  validation {
    condition     = length(var.public_subnet_ids) >= 2 && alltrue([for id in var.public_subnet_ids : can(regex("^subnet-[0-9a-f]+$", id))])
    error_message = "public_subnet_ids needs at least two subnet-... IDs (an ALB spans two availability zones)."
  }
}

variable "private_subnet_ids" {
  description = "Private subnets for the Fargate tasks. They need outbound HTTPS to AWS APIs (a NAT gateway or VPC endpoints for ECR, S3, DynamoDB, SQS, SSM and CloudWatch Logs)."
  type        = list(string)

  validation {
    condition     = length(var.private_subnet_ids) >= 1 && alltrue([for id in var.private_subnet_ids : can(regex("^subnet-[0-9a-f]+$", id))])
    error_message = "private_subnet_ids needs at least one subnet-... ID."
  }
}

variable "image_tag" {
  description = "Tag of the application image in the ECR repository to run (the deploy workflow passes the git commit SHA)."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", var.image_tag)) && var.image_tag != "latest"
    error_message = "image_tag must be a valid Docker tag and not \"latest\" (tags are immutable; deploy a commit SHA)."
  }
}

variable "certificate_arn" {
  description = "ACM certificate ARN for the HTTPS listener. Empty: the API is served over plain HTTP. Set: port 443 serves the API and port 80 redirects to it."
  type        = string
  default     = ""

  validation {
    condition     = var.certificate_arn == "" || can(regex("^arn:aws[a-z-]*:acm:", var.certificate_arn))
    error_message = "certificate_arn must be empty or an ACM certificate ARN."
  }
}

variable "domain_name" {
  description = "DNS name covered by certificate_arn that points (CNAME/alias, managed outside this module) at the load balancer. Used for api_url when HTTPS is on."
  type        = string
  default     = ""
}

variable "alb_ingress_cidrs" {
  description = "IPv4 CIDR blocks allowed to reach the API listeners."
  type        = list(string)
  default     = ["0.0.0.0/0"]

  validation {
    condition     = alltrue([for cidr in var.alb_ingress_cidrs : can(cidrhost(cidr, 0))])
    error_message = "alb_ingress_cidrs must be IPv4 CIDR blocks."
  }
}

variable "flower_allowed_cidrs" {
  description = "IPv4 CIDR blocks (operators' VPN or office) allowed to reach Flower over HTTPS on the load balancer's port 5555 (needs certificate_arn). Empty: Flower runs but is not exposed."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for cidr in var.flower_allowed_cidrs : can(cidrhost(cidr, 0)) && cidr != "0.0.0.0/0"])
    error_message = "flower_allowed_cidrs must be IPv4 CIDR blocks narrower than 0.0.0.0/0."
  }

  # Basic auth over plain HTTP would send the operators' password in the clear.
  validation {
    condition     = length(var.flower_allowed_cidrs) == 0 || var.certificate_arn != ""
    error_message = "flower_allowed_cidrs needs certificate_arn: Flower's basic auth is served over HTTPS only."
  }
}

variable "api_min_count" {
  description = "Fewest API tasks; autoscaling on requests per target adds tasks up to api_max_count."
  type        = number
  default     = 2

  validation {
    condition     = var.api_min_count >= 1 && floor(var.api_min_count) == var.api_min_count
    error_message = "api_min_count must be a whole number >= 1."
  }
}

variable "api_max_count" {
  description = "Most API tasks autoscaling may run."
  type        = number
  default     = 8

  validation {
    condition     = var.api_max_count >= var.api_min_count && floor(var.api_max_count) == var.api_max_count
    error_message = "api_max_count must be a whole number >= api_min_count."
  }
}

variable "api_requests_per_target" {
  description = "Autoscaling target for the API: load balancer requests per task per minute (ALBRequestCountPerTarget)."
  type        = number
  default     = 1000

  validation {
    condition     = var.api_requests_per_target >= 10
    error_message = "api_requests_per_target must be at least 10."
  }
}

variable "worker_min_count" {
  description = "Fewest Celery worker tasks; autoscaling on the queue backlog adds tasks up to worker_max_count."
  type        = number
  default     = 2

  validation {
    condition     = var.worker_min_count >= 1 && floor(var.worker_min_count) == var.worker_min_count
    error_message = "worker_min_count must be a whole number >= 1 (a queue with no worker never drains, and no backlog metric would wake one)."
  }
}

variable "worker_max_count" {
  description = "Most Celery worker tasks autoscaling may run."
  type        = number
  default     = 20

  validation {
    condition     = var.worker_max_count >= var.worker_min_count && floor(var.worker_max_count) == var.worker_max_count
    error_message = "worker_max_count must be a whole number >= worker_min_count."
  }
}

variable "worker_messages_per_task" {
  description = "Autoscaling target for the workers: visible messages in the jobs queue per running worker task."
  type        = number
  default     = 10

  validation {
    condition     = var.worker_messages_per_task >= 1
    error_message = "worker_messages_per_task must be at least 1."
  }
}

variable "flower_desired_count" {
  description = "Number of Flower tasks (0 or 1)."
  type        = number
  default     = 1

  validation {
    condition     = contains([0, 1], var.flower_desired_count)
    error_message = "flower_desired_count must be 0 or 1."
  }
}

variable "api_cpu" {
  description = "Fargate CPU units for an API task."
  type        = number
  default     = 512

  validation {
    condition     = contains([256, 512, 1024, 2048, 4096], var.api_cpu)
    error_message = "api_cpu must be one of 256, 512, 1024, 2048, 4096."
  }
}

variable "api_memory" {
  description = "Memory (MiB) for an API task; must be a valid Fargate pairing with api_cpu (checked before apply)."
  type        = number
  default     = 1024

  validation {
    condition     = var.api_memory >= 512 && var.api_memory <= 30720
    error_message = "api_memory must be between 512 and 30720 MiB."
  }
}

variable "worker_cpu" {
  description = "Fargate CPU units for a worker task."
  type        = number
  default     = 1024

  validation {
    condition     = contains([256, 512, 1024, 2048, 4096], var.worker_cpu)
    error_message = "worker_cpu must be one of 256, 512, 1024, 2048, 4096."
  }
}

variable "worker_memory" {
  description = "Memory (MiB) for a worker task; must be a valid Fargate pairing with worker_cpu."
  type        = number
  default     = 2048

  validation {
    condition     = var.worker_memory >= 512 && var.worker_memory <= 30720
    error_message = "worker_memory must be between 512 and 30720 MiB."
  }
}

variable "flower_cpu" {
  description = "Fargate CPU units for the Flower task."
  type        = number
  default     = 256

  validation {
    condition     = contains([256, 512, 1024, 2048, 4096], var.flower_cpu)
    error_message = "flower_cpu must be one of 256, 512, 1024, 2048, 4096."
  }
}

variable "flower_memory" {
  description = "Memory (MiB) for the Flower task; must be a valid Fargate pairing with flower_cpu."
  type        = number
  default     = 512

  validation {
    condition     = var.flower_memory >= 512 && var.flower_memory <= 30720
    error_message = "flower_memory must be between 512 and 30720 MiB."
  }
}

variable "visibility_timeout_seconds" {
  description = "SQS visibility timeout of the jobs queue, also passed to the app as VISIBILITY_TIMEOUT_SECONDS (Celery's transport option must match the queue): how soon a dead worker's message, or one whose receive was lost, comes back. A worker keeps the messages it holds invisible (ChangeMessageVisibilityBatch every third of it), so a step may run longer (STEP_TIME_LIMIT_SECONDS, 120 by default). The app refuses it outside 5-43200, or if it plus 3 x STEP_TIME_LIMIT_SECONDS + 30 exceeds 43200."
  type        = number
  default     = 15

  validation {
    condition     = var.visibility_timeout_seconds >= 5 && var.visibility_timeout_seconds <= 43200 && floor(var.visibility_timeout_seconds) == var.visibility_timeout_seconds
    error_message = "visibility_timeout_seconds must be a whole number from 5 (the worker extends it every third of it) to 43200 (SQS maximum: 12 hours)."
  }
}

variable "job_ttl_days" {
  description = "Days a job and its artifacts are kept: JOB_TTL_DAYS for the DynamoDB ttl attribute, and the S3 lifecycle expiry of jobs/."
  type        = number
  default     = 14

  validation {
    condition     = var.job_ttl_days >= 1 && var.job_ttl_days <= 365 && floor(var.job_ttl_days) == var.job_ttl_days
    error_message = "job_ttl_days must be a whole number between 1 and 365."
  }
}

variable "presign_ttl_seconds" {
  description = "Lifetime of presigned artifact URLs (PRESIGN_TTL_SECONDS)."
  type        = number
  default     = 900

  validation {
    condition     = var.presign_ttl_seconds >= 60 && var.presign_ttl_seconds <= 3600 && floor(var.presign_ttl_seconds) == var.presign_ttl_seconds
    error_message = "presign_ttl_seconds must be a whole number between 60 and 3600 (the range the app's settings accept)."
  }
}

variable "log_level" {
  description = "Application log level (LOG_LEVEL)."
  type        = string
  default     = "INFO"

  validation {
    condition     = contains(["DEBUG", "INFO", "WARNING", "ERROR"], var.log_level)
    error_message = "log_level must be DEBUG, INFO, WARNING or ERROR."
  }
}

variable "log_retention_days" {
  description = "Retention of the CloudWatch log groups, in days."
  type        = number
  default     = 30

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a value CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, ...)."
  }
}

variable "deletion_protection" {
  description = "Protect the jobs table and the load balancer from deletion. Turn off (and apply) before `terraform destroy`."
  type        = bool
  default     = true
}

variable "secrets_version" {
  description = "Generation of the INTERNAL_TOKEN and Flower secrets in SSM. Terraform writes new random values only when this changes: bump it to rotate them (then force a new deployment)."
  type        = number
  default     = 1

  validation {
    condition     = var.secrets_version >= 1 && floor(var.secrets_version) == var.secrets_version
    error_message = "secrets_version must be a whole number >= 1."
  }
}

variable "alarm_email" {
  description = "E-mail address subscribed to the alarms topic (the address must confirm). Empty: no subscription; subscribe a pager or chat integration to the alarms_topic_arn output instead."
  type        = string
  default     = ""

  validation {
    condition     = var.alarm_email == "" || can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", var.alarm_email))
    error_message = "alarm_email must be empty or an e-mail address."
  }
}

variable "alb_5xx_alarm_count" {
  description = "Alarm when the load balancer and the API together answer more than this many 5xx responses in 5 minutes."
  type        = number
  default     = 10

  validation {
    condition     = var.alb_5xx_alarm_count >= 0
    error_message = "alb_5xx_alarm_count must be >= 0."
  }
}

variable "queue_age_alarm_seconds" {
  description = "Alarm when the oldest message in the jobs queue is older than this many seconds (work is arriving faster than it is done, or no worker consumes)."
  type        = number
  default     = 600

  validation {
    condition     = var.queue_age_alarm_seconds >= 60
    error_message = "queue_age_alarm_seconds must be at least 60."
  }
}

variable "job_failure_rate_alarm_percent" {
  description = "Alarm when more than this percentage of the jobs that ended in 15 minutes failed."
  type        = number
  default     = 10

  validation {
    condition     = var.job_failure_rate_alarm_percent > 0 && var.job_failure_rate_alarm_percent <= 100
    error_message = "job_failure_rate_alarm_percent must be above 0 and at most 100."
  }
}
