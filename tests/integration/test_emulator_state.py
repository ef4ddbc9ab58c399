"""scripts/emulator.py --state-file: moto's state saved at stop, loaded at start (what `make run` keeps)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest
import requests

from tests.integration.conftest import free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


class Emulator:
    def __init__(self, state_file: Path, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    str(ROOT / "scripts" / "emulator.py"),
                    "--port",
                    str(self.port),
                    "--state-file",
                    str(state_file),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(f"{self.url}/moto-api/", timeout=1)
                break
            except requests.ConnectionError:
                assert self.proc.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)

    def client(self, service: str):
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        assert self.proc.wait(timeout=30) == 0, self.log.read_text()


def test_state_survives_a_restart_and_in_flight_messages_are_released(tmp_path):
    state, log = tmp_path / "state.pickle", tmp_path / "emulator.log"
    first = Emulator(state, log)
    try:
        dynamodb, s3, sqs, sns = (first.client(name) for name in ("dynamodb", "s3", "sqs", "sns"))
        dynamodb.create_table(
            TableName="jobs",
            BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "jobId", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "jobId", "AttributeType": "S"}],
        )
        dynamodb.put_item(TableName="jobs", Item={"jobId": {"S": "j1"}, "state": {"S": "done"}})
        s3.create_bucket(Bucket="artifacts-kept")
        s3.put_object(Bucket="artifacts-kept", Key="jobs/j1/asciiMinimap.txt", Body=b"#..#\n")
        queue = sqs.create_queue(QueueName="steps")["QueueUrl"]
        sqs.send_message(QueueUrl=queue, MessageBody="one")
        sqs.send_message(QueueUrl=queue, MessageBody="two")
        # One of them received by a consumer that the stop ends: invisible for 300 s, not deleted.
        received = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=1, VisibilityTimeout=300)["Messages"]
        topic = sns.create_topic(Name="events")["TopicArn"]
        sns.subscribe(
            TopicArn=topic,
            Protocol="sqs",
            Endpoint=sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"],
            Attributes={"RawMessageDelivery": "true"},
        )
    finally:
        first.stop()
    assert "emulator: saved" in log.read_text()

    second = Emulator(state, log)
    try:
        dynamodb, s3, sqs, sns = (second.client(name) for name in ("dynamodb", "s3", "sqs", "sns"))
        assert dynamodb.get_item(TableName="jobs", Key={"jobId": {"S": "j1"}})["Item"]["state"] == {"S": "done"}
        assert s3.get_object(Bucket="artifacts-kept", Key="jobs/j1/asciiMinimap.txt")["Body"].read() == b"#..#\n"
        url = s3.generate_presigned_url(
            "get_object", Params={"Bucket": "artifacts-kept", "Key": "jobs/j1/asciiMinimap.txt"}
        )
        assert requests.get(url, timeout=5).content == b"#..#\n"
        queue = sqs.get_queue_url(QueueName="steps")["QueueUrl"]
        # Both messages, at once: the one a stopped consumer held is not left invisible for 300 s.
        bodies = set()
        for _ in range(4):
            for message in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", []):
                bodies.add(message["Body"])
        assert bodies == {"one", "two"}, received
        sns.publish(TopicArn=sns.list_topics()["Topics"][0]["TopicArn"], Message="still subscribed")
        delivered = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, VisibilityTimeout=0)["Messages"]
        assert "still subscribed" in {message["Body"] for message in delivered}
        # And the loaded state is saved again at the next stop.
    finally:
        second.stop()
    assert log.read_text().count("emulator: saved") == 2


def test_a_state_file_this_moto_cannot_read_is_set_aside_and_the_emulator_starts_empty(tmp_path):
    state, log = tmp_path / "state.pickle", tmp_path / "emulator.log"
    state.write_bytes(b"not a pickle")
    emulator = Emulator(state, log)
    try:
        assert emulator.client("dynamodb").list_tables()["TableNames"] == []
    finally:
        emulator.stop()
    assert (tmp_path / "state.pickle.unreadable").read_bytes() == b"not a pickle"
    assert "unreadable" in log.read_text() and "starting empty" in log.read_text()
    assert state.is_file()  # this run's state, saved at its stop
