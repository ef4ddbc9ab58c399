terraform {
  # 1.11: write-only arguments (the SSM secrets' value_wo) fed by ephemeral
  # resources; 1.9 would do for the cross-variable validations alone.
  required_version = ">= 1.11"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # 5.100: ephemeral aws_secretsmanager_random_password and SSM value_wo.
      version = "~> 5.100"
    }
  }

  # Partial configuration: bucket, key, region and locking come from
  # `terraform init -backend-config=...` (see docs/deploy.md), so one module
  # serves every environment and no account detail is committed.
  backend "s3" {}
}
