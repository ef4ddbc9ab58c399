terraform {
  required_version = ">= 1.6"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.70"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.6"
    }
  }

  # Partial configuration: bucket, key, region and locking come from
  # `terraform init -backend-config=...` (see docs/deploy.md), so one module
  # serves every environment and no account detail is committed.
  backend "s3" {}
}
