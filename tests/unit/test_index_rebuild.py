"""While DynamoDB builds an index (a changed projection: the index dropped and built again), a
listing answers DEPENDENCY_UNAVAILABLE, retryable, not a server error; any other refusal stays one.
Every Query on an index: the jobs' listings and demo mode's artifacts (storage/aws_errors.py)."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber

from storage.dynamo import DynamoJobStore
from storage.dynamo_artifacts import DynamoArtifactStore
from storage.errors import DependencyUnavailable, GhostEngineError
from storage.model import JobState


@pytest.fixture
def client_and_stubber():
    client = boto3.client(
        "dynamodb",
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    with Stubber(client) as stubber:
        yield client, stubber


@pytest.fixture
def stubbed(client_and_stubber):
    client, stubber = client_and_stubber
    return DynamoJobStore(client, "jobs"), stubber


@pytest.mark.parametrize(
    ("message", "state"),
    [
        ("Cannot read from backfilling global secondary index: GSI1", None),
        ("The table does not have the specified index: GSI2", JobState.FAILED),
    ],
    ids=["backfilling", "dropped"],
)
def test_a_listing_while_its_index_is_built_is_unavailable_for_a_moment(stubbed, message, state):
    store, stubber = stubbed
    stubber.add_client_error("query", service_error_code="ValidationException", service_message=message)
    with pytest.raises(DependencyUnavailable, match="is being built; try again shortly") as raised:
        store.list_jobs(limit=10, state=state)
    assert raised.value.code == "DEPENDENCY_UNAVAILABLE"
    assert raised.value.details["index"] == ("GSI1" if state is None else "GSI2")


def test_any_other_refusal_of_a_listing_is_not_taken_for_a_rebuild(stubbed):
    store, stubber = stubbed
    stubber.add_client_error(
        "query", service_error_code="ValidationException", service_message="Invalid KeyConditionExpression"
    )
    with pytest.raises(GhostEngineError) as raised:
        store.list_jobs(limit=10)
    assert not isinstance(raised.value, DependencyUnavailable)


def test_demo_modes_artifact_listing_while_its_index_is_built_is_unavailable_for_a_moment(client_and_stubber):
    client, stubber = client_and_stubber
    artifacts = DynamoArtifactStore(client, "jobs", max_bytes=1024, ttl_days=1)
    stubber.add_client_error(
        "query",
        service_error_code="ValidationException",
        service_message="Cannot read from backfilling global secondary index: GSI1",
    )
    with pytest.raises(DependencyUnavailable, match="is being built; try again shortly") as raised:
        artifacts.artifacts_of("j1")
    assert raised.value.details["index"] == "GSI1"
