"""Request and response shapes, as marshmallow schemas; the OpenAPI document is generated from them."""

from __future__ import annotations

import json

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

import pipeline
from tasks.artifacts import ARTIFACTS

PROMPT_MAX = 2000
SEED_MAX = 2**31 - 1
LIMIT_MAX = 100
STEP_ERROR_DETAILS_MAX = 4096


class TrimmedString(fields.String):
    """A string with surrounding whitespace removed before validation."""

    def _deserialize(self, value, attr, data, **kwargs):
        return super()._deserialize(value, attr, data, **kwargs).strip()


class StrictInteger(fields.Integer):
    """An integer that refuses booleans, floats and numeric strings."""

    def __init__(self, **kwargs):
        super().__init__(strict=True, **kwargs)

    def _validated(self, value):
        if isinstance(value, bool):
            raise self.make_error("invalid")
        return super()._validated(value)


class StrictSchema(Schema):
    class Meta:
        unknown = RAISE


class GenerateSceneRequest(StrictSchema):
    prompt = TrimmedString(
        required=True,
        validate=validate.Length(min=1, max=PROMPT_MAX),
        metadata={"description": "What to generate; 1-2000 characters after trimming.", "example": "a spooky hallway"},
    )
    seed = StrictInteger(
        load_default=None,
        validate=validate.Range(min=0, max=SEED_MAX),
        metadata={"description": "0..2^31-1; chosen at random and echoed when absent.", "example": 123},
    )
    style = fields.String(
        load_default=pipeline.DEFAULT_STYLE,
        validate=validate.OneOf(pipeline.STYLES),
        metadata={"description": f"One of {', '.join(pipeline.STYLES)}; default {pipeline.DEFAULT_STYLE}."},
    )
    rooms = StrictInteger(
        validate=validate.Range(min=pipeline.MIN_ROOMS, max=pipeline.MAX_ROOMS),
        metadata={
            "description": f"Rooms to build (corridors not counted), {pipeline.MIN_ROOMS}..{pipeline.MAX_ROOMS}; "
            "absent: the prompt and the style decide (at most 50).",
            "example": 200,
        },
    )


class OperatorAction(StrictSchema):
    reason = TrimmedString(
        metadata={
            "description": "Why, recorded with the action: any Unicode but control characters, at most 200"
            " characters kept. Or in the action's header (X-Retry-Reason, X-Cancel-Reason), not both.",
            "example": "DynamoDB throttling fixed",
        },
    )


class JobAccepted(Schema):
    jobId = fields.String(required=True)
    statusUrl = fields.String(required=True)
    seed = fields.Integer(required=True)
    style = fields.String(required=True)
    state = fields.String(required=True)


class StepEventSchema(Schema):
    stepId = fields.String(required=True)
    jobId = fields.String(metadata={"description": "The job this step record belongs to."})
    attempt = fields.Integer(metadata={"description": "The attempt that recorded it (1, then one per retry)."})
    name = fields.String(required=True)
    startedAt = fields.String(required=True)
    endedAt = fields.String(required=True)
    durationMs = fields.Integer(required=True)
    summary = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(["ok", "error"]))


class JobErrorSchema(Schema):
    message = fields.String(required=True)
    code = fields.String(required=True)
    details = fields.Dict()


def _result_fields() -> dict:
    """Per artifact in tasks/artifacts.py: its key, its URL, and (demo mode) its inlined content."""
    result: dict = {
        "summary": fields.String(allow_none=True),
        "resultKey": fields.String(),
        "expiresIn": fields.Integer(metadata={"description": "Seconds the presigned URLs stay valid."}),
    }
    for artifact in ARTIFACTS:
        result[f"{artifact.field}Key"] = fields.String(metadata={"description": f"Store key of {artifact.name}."})
        demo = "absent in demo mode" if artifact.inline else "in demo mode, this API's path that serves it"
        result[f"{artifact.field}Url"] = fields.String(
            metadata={"description": f"Presigned GET URL of {artifact.name} ({demo})."}
        )
        if artifact.inline:
            kind = fields.Dict if artifact.inline == "json" else fields.String
            result[artifact.field] = kind(
                metadata={"description": f"{artifact.name}, inlined in demo mode (no bucket)."}
            )
    return result


JobResultSchema = Schema.from_dict(_result_fields(), name="JobResultSchema")


class JobRequestSchema(Schema):
    prompt = fields.String(required=True)
    seed = fields.Integer(required=True)
    style = fields.String(required=True)
    rooms = fields.Integer()


class JobStatus(Schema):
    jobId = fields.String(required=True)
    state = fields.String(required=True, validate=validate.OneOf(["queued", "running", "done", "failed", "cancelled"]))
    progress = fields.Float(required=True, metadata={"description": "Completed steps / total steps, 0..1."})
    steps = fields.List(fields.Nested(StepEventSchema), required=True)
    result = fields.Nested(JobResultSchema, allow_none=True, required=True)
    error = fields.Nested(JobErrorSchema, allow_none=True, required=True)
    createdAt = fields.String(required=True)
    updatedAt = fields.String(required=True)
    request = fields.Nested(JobRequestSchema, required=True)
    attempt = fields.Integer(required=True, metadata={"description": "1, plus one per operator retry."})
    attempts = fields.List(
        fields.Dict(),
        required=True,
        metadata={"description": "Retries: {attemptId, jobId, attempt, at, reason, by, fromStep, actionId}."},
    )
    cancellation = fields.Dict(
        required=True,
        allow_none=True,
        metadata={"description": "Who cancelled the job, why and when: {actionId, jobId, kind, at, by, reason}."},
    )


class JobSummary(Schema):
    jobId = fields.String(required=True)
    state = fields.String(required=True)
    progress = fields.Float(required=True)
    promptPreview = fields.String(required=True)
    createdAt = fields.String(required=True)
    updatedAt = fields.String(required=True)
    statusUrl = fields.String(required=True)


class JobList(Schema):
    jobs = fields.List(fields.Nested(JobSummary), required=True)
    nextCursor = fields.String(allow_none=True, required=True)


class ListJobsQuery(StrictSchema):
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=LIMIT_MAX))
    cursor = fields.String(load_default=None, validate=validate.Length(min=1, max=1024))
    state = fields.String(
        load_default=None,
        validate=validate.OneOf(["queued", "running", "done", "failed", "cancelled"]),
        metadata={"description": "Only jobs in this state (a Query on the state index)."},
    )


class Health(Schema):
    ok = fields.Boolean(required=True)


class ErrorBody(Schema):
    code = fields.String(required=True)
    message = fields.String(required=True)
    details = fields.Dict()


class ErrorResponse(Schema):
    error = fields.Nested(ErrorBody, required=True)


__all__ = ["ValidationError"]


ISO_UTC = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?(Z|[+-]\d\d:\d\d)$"


class StepEventRequest(StrictSchema):
    stepId = fields.String(
        required=True, validate=validate.Length(min=1, max=200), metadata={"description": "{jobId}:{name}"}
    )
    name = fields.String(required=True, validate=validate.OneOf(pipeline.STEPS))
    startedAt = fields.String(required=True, validate=validate.Regexp(ISO_UTC, error="Not an ISO 8601 timestamp."))
    endedAt = fields.String(required=True, validate=validate.Regexp(ISO_UTC, error="Not an ISO 8601 timestamp."))
    durationMs = StrictInteger(required=True, validate=validate.Range(min=0, max=7 * 86400 * 1000))
    summary = TrimmedString(required=True, validate=validate.Length(max=500))
    status = fields.String(required=True, validate=validate.OneOf(["ok", "error"]))
    error = fields.Nested(
        lambda: StepEventError(),
        load_default=None,
        metadata={
            "description": "With status error: the error the job fails with (default code STEP_FAILED, the"
            " summary as message). Not allowed with status ok."
        },
    )

    @validates_schema
    def _error_goes_with_status_error(self, data, **_kwargs):
        if data.get("error") is not None and data.get("status") != "error":
            raise ValidationError("only a step event with status error carries an error", "error")


def _small_json(value) -> None:
    # The error is stored in the job item, which DynamoDB caps at 400 KB.
    if len(json.dumps(value, ensure_ascii=False, default=str)) > STEP_ERROR_DETAILS_MAX:
        raise ValidationError(f"Longer than {STEP_ERROR_DETAILS_MAX} characters as JSON.")


class StepEventError(StrictSchema):
    message = TrimmedString(required=True, validate=validate.Length(min=1, max=1000))
    code = fields.String(
        required=True,
        validate=validate.Regexp(r"^[A-Z][A-Z0-9_]{0,63}$", error="An upper-case code such as RENDER_FAILED."),
    )
    details = fields.Dict(
        keys=fields.String(validate=validate.Length(min=1, max=64)),
        load_default=dict,
        validate=_small_json,
        metadata={"description": f"Any JSON object of at most {STEP_ERROR_DETAILS_MAX} characters."},
    )


class StepRecorded(Schema):
    jobId = fields.String(required=True)
    stepId = fields.String(required=True)
    outcome = fields.String(required=True, validate=validate.OneOf(["recorded", "duplicate"]))


class Readiness(Schema):
    ok = fields.Boolean(required=True)
    checks = fields.Dict(keys=fields.String(), values=fields.String(), required=True)
