# One item per job. GSI1 lists jobs newest first (GSI1PK is a constant
# partition, GSI1SK the creation time); GSI2 lists them by state.
# Both copy only what their readers read (storage/dynamo_items.py: INDEXED_ATTRIBUTES): every
# write of an item is billed again in each index, on its entry's size (docs/performance.md).
resource "aws_dynamodb_table" "jobs" {
  #checkov:skip=CKV_AWS_119:The AWS managed key (aws/dynamodb) is enough here: no cross-account access and no key-policy needs.
  name                        = local.jobs_table_name
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "jobId"
  deletion_protection_enabled = var.deletion_protection

  attribute {
    name = "jobId"
    type = "S"
  }

  attribute {
    name = "GSI1PK"
    type = "S"
  }

  attribute {
    name = "GSI1SK"
    type = "S"
  }

  attribute {
    name = "state"
    type = "S"
  }

  global_secondary_index {
    name               = "GSI1"
    hash_key           = "GSI1PK"
    range_key          = "GSI1SK"
    projection_type    = "INCLUDE"
    non_key_attributes = local.indexed_attributes
  }

  global_secondary_index {
    name               = "GSI2"
    hash_key           = "state"
    range_key          = "GSI1SK"
    projection_type    = "INCLUDE"
    non_key_attributes = setsubtract(local.indexed_attributes, ["state"]) # its key is in every entry
  }

  # The app writes `ttl` (epoch seconds, JOB_TTL_DAYS after creation).
  # DynamoDB may delete expired items up to 48 h late; readers check expiry.
  ttl {
    attribute_name = "ttl"
    enabled        = true
  }

  # Continuous backups: restore to any second of the last 35 days (the maximum), into a new
  # table (docs/operations.md, "Restore"). Deletion protection (above) guards the table itself.
  point_in_time_recovery {
    enabled                 = true
    recovery_period_in_days = 35
  }

  server_side_encryption {
    enabled = true
  }
}
