"""Unit tests for storage.model (state machine, ids, records) and storage.dynamo_items' pure item mapping."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from storage.dynamo_items import LIST_PARTITION, item_from_job, job_from_item, list_sort_key, progress_share
from storage.model import (
    MAX_SUMMARY_CHARS,
    PREVIEW_LENGTH,
    TERMINAL_STATES,
    TRANSITIONS,
    Completion,
    Job,
    JobError,
    JobState,
    StepEvent,
    StepStatus,
    can_transition,
    is_job_id,
    new_job_id,
    preview,
    sources_of,
    step_id,
    utc_now,
)

ALLOWED = {
    (JobState.QUEUED, JobState.RUNNING),
    (JobState.QUEUED, JobState.FAILED),
    (JobState.QUEUED, JobState.CANCELLED),
    (JobState.RUNNING, JobState.DONE),
    (JobState.RUNNING, JobState.FAILED),
    (JobState.RUNNING, JobState.CANCELLED),
}
ALL_PAIRS = [(a, b) for a in JobState for b in JobState]
JOB_ID = "3f0c8a2e-1b4d-4c6e-9f00-123456789abc"


def make_event(name: str = "layout_rooms", status: StepStatus = StepStatus.OK, job_id: str = JOB_ID) -> StepEvent:
    return StepEvent(
        step_id=step_id(job_id, name),
        name=name,
        started_at="2026-01-01T00:00:00.000Z",
        ended_at="2026-01-01T00:00:00.250Z",
        duration_ms=250,
        summary="6 rooms 👻",
        status=status,
    )


# --- the state machine --------------------------------------------------------------


@pytest.mark.parametrize(("current", "target"), sorted(ALLOWED))
def test_allowed_transitions(current, target):
    """Each forward edge of queued -> running -> done|failed (and cancel) is allowed."""
    assert can_transition(current, target)


@pytest.mark.parametrize(("current", "target"), [pair for pair in ALL_PAIRS if pair not in ALLOWED])
def test_refused_transitions(current, target):
    """Every other pair is refused: no self loops, no going back, no skipping queued -> done, no exit from terminal."""
    assert not can_transition(current, target)


def test_queued_to_done_is_refused():
    """A job cannot be done without having run."""
    assert not can_transition(JobState.QUEUED, JobState.DONE)


@pytest.mark.parametrize("terminal", sorted(TERMINAL_STATES))
def test_terminal_states_have_no_exits(terminal):
    """done, failed and cancelled lead nowhere."""
    assert TRANSITIONS[terminal] == frozenset()
    assert not any(can_transition(terminal, target) for target in JobState)


def test_terminal_states_are_exactly_done_failed_cancelled():
    """The terminal set is the three end states."""
    assert {JobState.DONE, JobState.FAILED, JobState.CANCELLED} == TERMINAL_STATES


def test_every_state_has_transitions_entry():
    """The table covers every state (a new state cannot be forgotten)."""
    assert set(TRANSITIONS) == set(JobState)


@pytest.mark.parametrize(
    ("target", "sources"),
    [
        (JobState.QUEUED, set()),
        (JobState.RUNNING, {JobState.QUEUED}),
        (JobState.DONE, {JobState.RUNNING}),
        (JobState.FAILED, {JobState.QUEUED, JobState.RUNNING}),
        (JobState.CANCELLED, {JobState.QUEUED, JobState.RUNNING}),
    ],
)
def test_sources_of(target, sources):
    """sources_of gives exactly the states a conditional write may move from."""
    assert sources_of(target) == sources


def test_state_values_are_the_stored_strings():
    """The attribute values stored and returned by the API."""
    assert [s.value for s in JobState] == ["queued", "running", "done", "failed", "cancelled"]


# --- ids and time -----------------------------------------------------------------------


def test_step_id_format():
    """A step id is ``{jobId}:{step}``."""
    assert step_id(JOB_ID, "populate") == f"{JOB_ID}:populate"


def test_new_job_id_is_a_job_id_and_unique():
    """new_job_id gives valid, distinct ids."""
    ids = {new_job_id() for _ in range(50)}
    assert len(ids) == 50 and all(is_job_id(i) for i in ids)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "not-a-uuid",
        JOB_ID.upper(),
        JOB_ID.replace("-", ""),
        JOB_ID[:-1],
        JOB_ID + "0",
        " " + JOB_ID,
        JOB_ID + " ",
        "fc5dc432-f14c-11f1-bf30-02fc00000001",  # version 1 (time-based)
        "3f0c8a2e-1b4d-4c6e-7f00-123456789abc",  # variant nibble 7 is not RFC 4122
        "3f0c8a2e-1b4d-4c6e-9f00-12345678９abc",  # a full-width digit
    ],
)
def test_is_job_id_refuses(value):
    """Only lower-case, hyphenated, version-4 UUIDs are job ids."""
    assert not is_job_id(value)


def test_is_job_id_refuses_trailing_newline():
    """'<uuid>\\n' is not a job id."""
    assert not is_job_id(JOB_ID + "\n")


def test_is_job_id_accepts_uuid4():
    """A real uuid4 string is a job id."""
    assert is_job_id(JOB_ID) and is_job_id(str(uuid.uuid4()))


def test_utc_now_format():
    """ISO 8601 UTC with milliseconds and Z, so string order is time order."""
    import re

    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", utc_now())


# --- records --------------------------------------------------------------------------


@pytest.mark.parametrize("status", list(StepStatus))
def test_step_event_round_trip(status):
    """StepEvent survives to_dict/from_dict, with the API's camelCase keys."""
    event = make_event(status=status)
    raw = event.to_dict()
    assert raw == {
        "stepId": f"{JOB_ID}:layout_rooms",
        "jobId": JOB_ID,
        "attempt": 1,
        "name": "layout_rooms",
        "startedAt": "2026-01-01T00:00:00.000Z",
        "endedAt": "2026-01-01T00:00:00.250Z",
        "durationMs": 250,
        "summary": "6 rooms 👻",
        "status": status.value,
    }
    assert StepEvent.from_dict(raw) == event


def test_step_event_from_dynamo_decimal_duration():
    """durationMs comes back from DynamoDB as a Decimal and is read as an int."""
    raw = make_event().to_dict() | {"durationMs": Decimal(250)}
    event = StepEvent.from_dict(raw)
    assert event.duration_ms == 250 and type(event.duration_ms) is int


@pytest.mark.parametrize(
    "error",
    [JobError("boom", "STEP_FAILED"), JobError("boom", "STEP_FAILED", {"step": "populate", "bytes": 3})],
)
def test_job_error_round_trip(error):
    """JobError survives to_dict/from_dict; details appear only when present."""
    raw = error.to_dict()
    assert raw["message"] == "boom" and raw["code"] == "STEP_FAILED"
    assert ("details" in raw) == bool(error.details)
    assert JobError.from_dict(raw) == error


def test_job_error_from_dict_with_null_details():
    """A stored null details reads as no details."""
    assert JobError.from_dict({"message": "m", "code": "C", "details": None}) == JobError("m", "C")


# --- progress shares ----------------------------------------------------------------------


def test_five_steps_sum_to_exactly_one():
    """With 5 steps the shares add to exactly 1 (0.2 is exact in Decimal)."""
    total = sum(progress_share(make_event(f"s{i}"), 5) for i in range(5))
    assert total == Decimal(1)


@pytest.mark.parametrize("total_steps", [3, 6, 7, 9, 11])
def test_shares_never_exceed_one(total_steps):
    """Shares round down, so a job's summed progress never passes 1 (mark_done sets 1 exactly)."""
    share = progress_share(make_event(), total_steps)
    assert share * total_steps <= 1
    assert share * total_steps > Decimal("0.9999")


def test_three_steps_share():
    """1/3 rounds down to 0.333333."""
    assert progress_share(make_event(), 3) == Decimal("0.333333")


def test_error_steps_add_nothing():
    """A failed step adds no progress."""
    assert progress_share(make_event(status=StepStatus.ERROR), 5) == 0


def test_zero_total_steps_adds_nothing():
    """A job with no steps cannot divide by zero."""
    assert progress_share(make_event(), 0) == 0


# --- item mapping ----------------------------------------------------------------------


def make_job(**changes) -> Job:
    base = dict(
        job_id=JOB_ID,
        state=JobState.QUEUED,
        created_at="2026-01-01T00:00:00.000Z",
        updated_at="2026-01-01T00:00:01.000Z",
        request={"prompt": "a spooky hallway 👻", "seed": 2**31 - 1, "style": "doom"},
        total_steps=5,
        ttl=1_800_000_000,
    )
    return Job(**(base | changes))


def through_dynamo(item: dict) -> dict:
    """What DynamoDB hands back for ``item``: serialised to attribute values and deserialised (numbers as Decimal)."""
    serializer, deserializer = TypeSerializer(), TypeDeserializer()
    return {key: deserializer.deserialize(serializer.serialize(value)) for key, value in item.items()}


def test_item_has_listing_keys_and_ttl():
    """The item carries GSI1PK "JOB", GSI1SK "{createdAt}#{jobId}", the ttl and the state attribute."""
    job = make_job()
    item = item_from_job(job)
    assert item["jobId"] == JOB_ID
    assert item["state"] == "queued"
    assert item["GSI1PK"] == LIST_PARTITION == "JOB"
    assert item["GSI1SK"] == f"2026-01-01T00:00:00.000Z#{JOB_ID}" == list_sort_key(job)
    assert item["ttl"] == 1_800_000_000
    assert item["promptPreview"] == "a spooky hallway 👻"
    assert item["totalSteps"] == 5


def test_new_job_item_has_no_empty_step_ids_set():
    """DynamoDB refuses an empty set, so a job without steps has no stepIds attribute."""
    item = item_from_job(make_job())
    assert "stepIds" not in item
    assert "faultDrill" not in item


def test_item_has_no_floats():
    """DynamoDB refuses Python floats; progress goes in as a Decimal."""
    item = item_from_job(make_job(progress=0.4))
    assert item["progress"] == Decimal("0.4")
    through_dynamo(item)  # TypeSerializer raises on a float


@pytest.mark.parametrize(
    "job",
    [
        make_job(),
        make_job(
            state=JobState.RUNNING,
            progress=0.4,
            steps=(make_event("parse_prompt"), make_event("layout_rooms")),
            step_ids=frozenset({step_id(JOB_ID, "parse_prompt"), step_id(JOB_ID, "layout_rooms")}),
            fault_drill="fail:populate",
        ),
    ],
    ids=["queued", "running-with-steps"],
)
def test_item_round_trip(job):
    """job_from_item(item_from_job(job)) == job, also after DynamoDB's type round trip (Decimals)."""
    assert job_from_item(item_from_job(job)) == job
    restored = job_from_item(through_dynamo(item_from_job(job)))
    assert restored == job
    assert type(restored.request["seed"]) is int
    assert type(restored.steps[0].duration_ms if restored.steps else 0) is int


def test_job_from_item_reads_terminal_fields():
    """error, resultKeys and resultSummary written by later updates are read back."""
    item = item_from_job(make_job()) | {
        "state": "done",
        "progress": Decimal(1),
        "resultKeys": {"result": f"jobs/{JOB_ID}/result.json"},
        "resultSummary": "6 rooms",
        "error": {"message": "m", "code": "C", "details": {"n": Decimal(3)}},
    }
    job = job_from_item(item)
    assert job.state is JobState.DONE and job.progress == 1.0
    assert job.result_keys == {"result": f"jobs/{JOB_ID}/result.json"}
    assert job.result_summary == "6 rooms"
    assert job.error == JobError("m", "C", {"n": 3})


def test_job_from_item_caps_progress_at_one():
    """A summed progress a hair over 1 is read as 1."""
    assert job_from_item(item_from_job(make_job()) | {"progress": Decimal("1.000001")}).progress == 1.0


def test_a_completion_s_summary_is_bounded_like_a_step_s():
    """The last step's summary gains a note per artifact left out; the job item must stay bounded."""
    completion = Completion(result_keys={}, summary="Drew a map; " + "no map.wad: too large; " * 100)
    assert len(completion.summary) <= MAX_SUMMARY_CHARS
    assert completion.summary.startswith("Drew a map; ")


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("a" * 79 + "e\u0301", "a" * 79),  # an accent is not cut from its letter
        ("a" * 78 + "\U0001f468\u200d\U0001f469\u200d\U0001f467", "a" * 78),  # a family emoji, whole or not at all
        ("a" * 79 + "\U0001f44d\U0001f3fd", "a" * 79),  # a thumb and its skin tone
        ("a" * 79 + "\U0001f1eb\U0001f1f7", "a" * 79),  # a flag's two halves
        ("a" * 78 + "\U0001f1eb\U0001f1f7\U0001f1e9\U0001f1ea", "a" * 78 + "\U0001f1eb\U0001f1f7"),  # two flags
        ("a" * 79 + "1\ufe0f\u20e3", "a" * 79),  # a keycap
        ("漢" * 100, "漢" * 80),  # nothing joined: 80 code points
        ("short 👻", "short 👻"),
    ],
    ids=["accent", "family", "skin-tone", "flag", "two-flags", "keycap", "plain", "short"],
)
def test_a_prompt_preview_is_never_cut_inside_a_character(prompt, expected):
    """The list shows the first 80 code points of any Unicode prompt, less a character's parts left over."""
    assert preview(prompt, PREVIEW_LENGTH) == expected
