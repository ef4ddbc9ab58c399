# Secrets reach the containers through the task definitions' `secrets`
# (resolved by ECS at start-up), never as plain environment variables.
#
# Terraform creates each parameter with a random value so a fresh stack is
# never open with a guessable secret; operators rotate it with
# `aws ssm put-parameter --overwrite` and Terraform leaves the value alone.

resource "random_password" "internal_token" {
  length  = 48
  special = false
}

resource "random_password" "flower" {
  length  = 32
  special = false
}

resource "aws_ssm_parameter" "internal_token" {
  #checkov:skip=CKV_AWS_337:The AWS managed key (aws/ssm) is enough; ECS task execution can decrypt it without a key policy.
  name        = "/${local.project}/${var.env}/internal-token"
  description = "INTERNAL_TOKEN: shared secret for the X-INTERNAL-TOKEN header of /internal endpoints."
  type        = "SecureString"
  value       = random_password.internal_token.result

  lifecycle {
    ignore_changes = [value]
  }
}

resource "aws_ssm_parameter" "flower_basic_auth" {
  #checkov:skip=CKV_AWS_337:The AWS managed key (aws/ssm) is enough; ECS task execution can decrypt it without a key policy.
  name        = "/${local.project}/${var.env}/flower-basic-auth"
  description = "FLOWER_BASIC_AUTH: user:password for Flower's basic authentication."
  type        = "SecureString"
  value       = "ops:${random_password.flower.result}"

  lifecycle {
    ignore_changes = [value]
  }
}
