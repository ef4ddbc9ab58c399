# Fanout for Celery's events (Flower's task pages) and remote control (`celery inspect`,
# Flower's worker pages). kombu's SQS transport publishes to these topics; each worker and
# Flower subscribe a queue of their own (raw message delivery). The app is told the ARNs
# (EVENTS_TOPIC_ARN, CONTROL_TOPIC_ARN) and never makes a topic in production.

resource "aws_sns_topic" "events" {
  name              = "${local.control_prefix}celeryev"
  kms_master_key_id = "alias/aws/sns"
}

resource "aws_sns_topic" "control" {
  name              = "${local.control_prefix}celery-pidbox"
  kms_master_key_id = "alias/aws/sns"
}
