"""Unit tests for GET /openapi.json: a valid OpenAPI 3 document that covers every route and the request rules."""

from __future__ import annotations

import re

import pytest
from openapi_spec_validator import validate

import pipeline
from api.schemas import LIMIT_MAX, PROMPT_MAX, SEED_MAX

IGNORED_METHODS = {"HEAD", "OPTIONS"}


@pytest.fixture
def spec(client) -> dict:
    response = client.get("/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    return response.get_json()


def openapi_path(rule: str) -> str:
    """Flask's ``/status/<job_id>`` (or ``<string:job_id>``) as OpenAPI's ``/status/{job_id}``."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


def test_document_is_valid_openapi(spec):
    """openapi_spec_validator accepts the document (it raises on any schema or reference error)."""
    validate(spec)
    assert spec["openapi"].startswith("3.")


def test_every_route_and_method_is_documented(app, spec):
    """Each url_map rule (except static), with each of its methods, has an operation in the document."""
    # The console's HTML pages (api/console/) are for people, not part of the JSON API.
    rules = [
        rule
        for rule in app.url_map.iter_rules()
        if rule.endpoint != "static" and not rule.endpoint.startswith("console.")
    ]
    assert rules
    for rule in rules:
        path = openapi_path(rule.rule)
        assert path in spec["paths"], f"{rule.rule} is not in the OpenAPI document"
        for method in set(rule.methods) - IGNORED_METHODS:
            assert method.lower() in spec["paths"][path], f"{method} {rule.rule} is not documented"


def test_no_documented_path_is_missing_from_the_app(app, spec):
    """The document describes no endpoint the app does not serve."""
    served = {openapi_path(rule.rule) for rule in app.url_map.iter_rules()}
    assert set(spec["paths"]) <= served


def test_path_parameters_are_declared(spec):
    """Every {param} in a path is declared as a required path parameter of its operations."""
    for path, operations in spec["paths"].items():
        names = set(re.findall(r"{([^}]+)}", path))
        for operation in operations.values():
            declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert declared == names, path


def test_generate_scene_request_rules(spec):
    """GenerateSceneRequest: prompt required with maxLength 2000, styles as an enum, seed 0..2^31-1, no extras."""
    schema = spec["components"]["schemas"]["GenerateSceneRequest"]
    assert schema["required"] == ["prompt"]
    assert schema["properties"]["prompt"]["maxLength"] == PROMPT_MAX == 2000
    assert schema["properties"]["prompt"]["minLength"] == 1
    assert schema["properties"]["style"]["enum"] == list(pipeline.STYLES)
    assert schema["properties"]["style"]["default"] == pipeline.DEFAULT_STYLE
    assert schema["properties"]["seed"]["minimum"] == 0
    assert schema["properties"]["seed"]["maximum"] == SEED_MAX == 2**31 - 1
    assert schema["additionalProperties"] is False


def test_generate_scene_documents_its_responses(spec):
    """POST /generate-scene documents 202 with Location and every error status the API can give."""
    operation = spec["paths"]["/generate-scene"]["post"]
    assert "Location" in operation["responses"]["202"]["headers"]
    assert {"202", "400", "413", "415", "422", "503"} <= set(operation["responses"])
    error_ref = operation["responses"]["422"]["content"]["application/json"]["schema"]["$ref"]
    assert error_ref.endswith("/ErrorResponse")


def test_list_jobs_query_limits(spec):
    """GET /jobs documents limit 1..100 and the cursor as query parameters."""
    params = {p["name"]: p for p in spec["paths"]["/jobs"]["get"]["parameters"]}
    assert params["limit"]["in"] == "query"
    assert params["limit"]["schema"]["minimum"] == 1 and params["limit"]["schema"]["maximum"] == LIMIT_MAX == 100
    assert "cursor" in params


def test_job_status_schema_lists_every_state(spec):
    """JobStatus.state enumerates exactly the model's states."""
    from storage.model import JobState

    state = spec["components"]["schemas"]["JobStatus"]["properties"]["state"]
    assert state["enum"] == [s.value for s in JobState]


def test_operation_ids_are_unique(spec):
    """operationIds are unique (client generators depend on it)."""
    ids = [op["operationId"] for ops in spec["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids))
