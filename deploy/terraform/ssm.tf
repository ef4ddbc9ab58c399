# Secrets reach the containers through the task definitions' `secrets` (resolved by
# ECS when a task starts), never as plain environment variables.
#
# Each value is generated at apply time (secrets.tf) and written through the
# write-only value_wo, so a fresh stack is never open with a guessable secret and no
# secret is stored in the Terraform state. Terraform writes the values only when
# secrets_version changes (bump it to rotate); operators may also rotate with
# `aws ssm put-parameter --overwrite`, which Terraform leaves alone.

resource "aws_ssm_parameter" "internal_token" {
  #checkov:skip=CKV_AWS_337:The AWS managed key (aws/ssm) is enough; ECS task execution can decrypt it without a key policy.
  name             = "/${local.project}/${var.env}/internal-token"
  description      = "INTERNAL_TOKEN: shared secret for the X-INTERNAL-TOKEN header of the operators' and /internal endpoints."
  type             = "SecureString"
  value_wo         = local.generated_secrets.internal_token
  value_wo_version = var.secrets_version
}

resource "aws_ssm_parameter" "flower_basic_auth" {
  #checkov:skip=CKV_AWS_337:The AWS managed key (aws/ssm) is enough; ECS task execution can decrypt it without a key policy.
  name             = "/${local.project}/${var.env}/flower-basic-auth"
  description      = "FLOWER_BASIC_AUTH: user:password for Flower's basic authentication."
  type             = "SecureString"
  value_wo         = local.generated_secrets.flower_basic_auth
  value_wo_version = var.secrets_version
}
