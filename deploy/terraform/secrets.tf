# The two generated secrets, from Secrets Manager's GetRandomPassword as ephemeral
# resources: their values exist only while Terraform runs, and reach AWS only through
# the SSM parameters' write-only value_wo (ssm.tf). Neither the state nor a saved plan
# ever holds them. (tests/deploy swaps this one file for fixed values in the plan-level
# `terraform test`: Terraform 1.11's mock providers cannot serve ephemeral resources.)

ephemeral "aws_secretsmanager_random_password" "internal_token" {
  password_length     = 48
  exclude_punctuation = true
}

ephemeral "aws_secretsmanager_random_password" "flower" {
  password_length     = 32
  exclude_punctuation = true
}

locals {
  generated_secrets = {
    internal_token    = ephemeral.aws_secretsmanager_random_password.internal_token.random_password
    flower_basic_auth = "ops:${ephemeral.aws_secretsmanager_random_password.flower.random_password}"
  }
}
