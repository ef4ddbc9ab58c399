resource "aws_s3_bucket" "artifacts" {
  #checkov:skip=CKV_AWS_18:Access logging needs a separate log bucket; object access is already attributable through the task roles in CloudTrail.
  #checkov:skip=CKV_AWS_144:Artifacts are derived deterministically from the request and expire after job_ttl_days; cross-region replication buys nothing.
  #checkov:skip=CKV_AWS_145:SSE-S3 (AES256) is the chosen encryption; a customer managed KMS key adds cost without a consumer that needs it.
  #checkov:skip=CKV_AWS_21:Artifacts are write-once and re-creatable from the job request; versioning would only keep duplicate copies.
  #checkov:skip=CKV2_AWS_62:No consumer of S3 event notifications; the job item in DynamoDB is the source of truth.
  bucket = local.artifacts_bucket
}

resource "aws_s3_bucket_server_side_encryption_configuration" "artifacts" {
  bucket = aws_s3_bucket.artifacts.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_public_access_block" "artifacts" {
  bucket = aws_s3_bucket.artifacts.id

  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "artifacts" {
  bucket = aws_s3_bucket.artifacts.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "artifacts" {
  bucket = aws_s3_bucket.artifacts.id

  # Artifacts live exactly as long as their job item (JOB_TTL_DAYS).
  rule {
    id     = "expire-jobs"
    status = "Enabled"

    filter {
      prefix = local.artifacts_prefix
    }

    expiration {
      days = var.job_ttl_days
    }
  }

  rule {
    id     = "abort-incomplete-multipart-uploads"
    status = "Enabled"

    filter {}

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

data "aws_iam_policy_document" "artifacts_bucket" {
  statement {
    sid     = "DenyInsecureTransport"
    effect  = "Deny"
    actions = ["s3:*"]
    resources = [
      aws_s3_bucket.artifacts.arn,
      "${aws_s3_bucket.artifacts.arn}/*",
    ]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "artifacts" {
  bucket = aws_s3_bucket.artifacts.id
  policy = data.aws_iam_policy_document.artifacts_bucket.json

  # S3 rejects a bucket policy while the public access block is being applied.
  depends_on = [aws_s3_bucket_public_access_block.artifacts]
}
