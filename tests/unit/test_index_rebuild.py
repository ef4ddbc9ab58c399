"""While DynamoDB builds an index (a changed projection: the index dropped and built again), a
listing answers DEPENDENCY_UNAVAILABLE, retryable, not a server error; any other refusal stays one."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber

from storage.dynamo import DynamoJobStore
from storage.errors import DependencyUnavailable, GhostEngineError
from storage.model import JobState


@pytest.fixture
def stubbed():
    client = boto3.client(
        "dynamodb",
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    with Stubber(client) as stubber:
        yield DynamoJobStore(client, "jobs"), stubber


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
