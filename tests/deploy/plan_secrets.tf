# Test only: replaces deploy/terraform/secrets.tf in the scratch copy that runs the
# plan-level `terraform test`. Terraform 1.11's mock providers cannot serve ephemeral
# resources ("No ephemeral resource types in mock providers"), so the two generated
# secrets become fixed strings here. The emulator apply keeps the real secrets.tf.

locals {
  generated_secrets = {
    internal_token    = "plan-test-token"
    flower_basic_auth = "ops:plan-test-password"
  }
}
