"""Property-based fuzzing of the live API from its own /openapi.json (schemathesis)."""

from __future__ import annotations

import time

import hypothesis
import pytest
import requests
import schemathesis
from hypothesis import strategies as st
from schemathesis import GenerationMode

pytestmark = pytest.mark.integration

TOKEN = "fuzz-internal-token"
SEED = 20240611
MAX_EXAMPLES = 200
MIN_REQUESTS = 1000

sent: list[int] = []


@pytest.fixture(scope="module")
def fuzz_stack(make_stack):
    live = make_stack({"INTERNAL_TOKEN": TOKEN}, worker=False)
    return live


@pytest.fixture(scope="module")
def api_schema(fuzz_stack):
    schema = schemathesis.openapi.from_url(f"{fuzz_stack.url}/openapi.json")
    schema.config.seed = SEED
    schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], max_examples=MAX_EXAMPLES)
    return schema


@pytest.fixture(scope="module")
def http(fuzz_stack):
    session = requests.Session()
    session.hooks["response"].append(lambda response, *args, **kwargs: sent.append(response.status_code))
    yield session
    session.close()


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@schema.given(with_token=st.booleans())
@hypothesis.settings(derandomize=True, database=None, deadline=None)
def test_api_fuzz(case, with_token, http):
    headers = {"X-INTERNAL-TOKEN": TOKEN} if with_token else None
    case.call_and_validate(session=http, headers=headers)


def test_fuzz_sent_enough_requests():
    assert len(sent) >= MIN_REQUESTS, len(sent)
