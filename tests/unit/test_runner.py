"""Unit tests for tasks.runner and tasks.steps.job_error: one step of one job, over the fake stores."""

from __future__ import annotations

import json
import time
import uuid
import zlib
from dataclasses import replace

import pytest
from celery.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded
from structlog.testing import capture_logs

import pipeline
from pipeline.picture import render_png
from storage.errors import ArtifactTooLarge, DependencyUnavailable, JobNotFound
from storage.model import JobError, JobState, RecordedCheckpoint, StepEvent, StepStatus, step_id
from tasks import artifacts, checkpoints, runner
from tasks.checkpoints import RESULT, artifact_key, checkpoint_key
from tasks.dispatch import submit_job
from tasks.runner import FaultDrill, Next, StepRun, fail_job, run_step
from tasks.steps import job_error

REQUEST = {"prompt": "a spooky hallway", "seed": 123, "style": "doom"}
LAST = pipeline.STEPS[-1]
SCENE_GRAPH, ASCII_MINIMAP, MINIMAP_PNG = "sceneGraph.json", "asciiMinimap.txt", "minimap.png"


@pytest.fixture
def new_job(services):
    """Create a queued job the way the API does, with a no-op enqueue."""

    def make(request=REQUEST, fault_drill: str | None = None) -> str:
        job, _ = submit_job(services.jobs, request, ttl_days=1, fault_drill=fault_drill, enqueue=lambda *a: None)
        return job.job_id

    return make


@pytest.fixture
def pipeline_calls(monkeypatch) -> list[str]:
    """Count pipeline.run_step calls (still running the real step)."""
    calls: list[str] = []
    real = pipeline.run_step

    def counting(name, previous):
        calls.append(name)
        return real(name, previous)

    monkeypatch.setattr(pipeline, "run_step", counting)
    return calls


def run_all(services, job_id, steps=pipeline.STEPS) -> list[StepRun]:
    return [run_step(services, job_id, step) for step in steps]


def expected_output(request=REQUEST) -> dict:
    """The pipeline's final data for ``request``, computed directly (the pipeline is deterministic)."""
    data = dict(request)
    for step in pipeline.STEPS:
        data = json.loads(pipeline.encode_json(pipeline.run_step(step, data).data))
    return data


# --- the happy path ---------------------------------------------------------------


def test_all_steps_in_order_end_done(services, new_job):
    """Every step once, in order: each is recorded, the job ends done with progress 1 and one entry per step."""
    job_id = new_job()
    runs = run_all(services, job_id)
    assert runs == [StepRun(Next.CONTINUE, "recorded")] * len(pipeline.STEPS)
    job = services.jobs.get(job_id)
    assert job.state is JobState.DONE
    assert job.progress == 1
    assert [step.name for step in job.steps] == list(pipeline.STEPS)
    assert [step.step_id for step in job.steps] == [step_id(job_id, s) for s in pipeline.STEPS]
    assert all(step.status is StepStatus.OK and step.summary for step in job.steps)
    assert job.error is None
    assert job.result_keys == {
        "sceneGraph": artifact_key(job_id, SCENE_GRAPH),
        "asciiMinimap": artifact_key(job_id, ASCII_MINIMAP),
        "minimapPng": artifact_key(job_id, MINIMAP_PNG),
        "result": artifact_key(job_id, RESULT),
    }
    assert job.result_summary == job.steps[-1].summary


def test_the_log_times_a_steps_computation_apart_from_storing_its_artifacts(services, new_job, monkeypatch):
    """step.recorded's durationMs is the step's time as its record shows it; computeMs leaves the
    last step's artifacts out, and artifacts.written times their making apart from their uploads
    (make bench (f) counts the uploads as a round trip, and the making as compute)."""
    put = services.artifacts.put

    def slow_put(key, body, content_type):
        time.sleep(0.5)
        put(key, body, content_type)

    monkeypatch.setattr(services.artifacts, "put", slow_put)
    job_id = new_job()
    with capture_logs() as logs:
        run_all(services, job_id)
    recorded = {entry["step"]: entry for entry in logs if entry["event"] == "step.recorded"}
    assert recorded.keys() == set(pipeline.STEPS)
    assert all(0 <= entry["computeMs"] <= entry["durationMs"] for entry in recorded.values())
    assert recorded[LAST]["durationMs"] - recorded[LAST]["computeMs"] >= 500  # result.json's upload at least
    [written] = [entry for entry in logs if entry["event"] == "artifacts.written"]
    assert written["ms"] - written["madeMs"] >= 500  # result.json goes once the others are made
    assert written["count"] == len(services.jobs.get(job_id).result_keys)


def test_first_step_moves_job_to_running(services, new_job):
    """After the first step the job is running with progress 1/len(STEPS)."""
    job_id = new_job()
    run_step(services, job_id, pipeline.STEPS[0])
    job = services.jobs.get(job_id)
    assert job.state is JobState.RUNNING
    assert job.progress == pytest.approx(1 / len(pipeline.STEPS))


def test_checkpoints_and_artifacts_are_written_at_their_keys(services, new_job, in_s3):
    """A checkpoint per step between the first (recomputed from the request) and the last (the
    artifacts), in S3 when too big for the step's record."""
    job_id = new_job()
    run_all(services, job_id)
    blobs = services.artifacts.blobs
    for step in pipeline.STEPS[1:-1]:
        checkpoint = json.loads(blobs[checkpoint_key(job_id, step)])
        assert checkpoint["step"] == step and "data" in checkpoint and checkpoint["summary"]
    assert checkpoint_key(job_id, pipeline.STEPS[0]) not in blobs
    assert checkpoint_key(job_id, LAST) not in blobs
    final = expected_output()
    assert blobs[artifact_key(job_id, SCENE_GRAPH)] == pipeline.encode_json(final["sceneGraph"])
    assert blobs[artifact_key(job_id, ASCII_MINIMAP)].decode("utf-8") == final["asciiMinimap"]
    assert blobs[artifact_key(job_id, MINIMAP_PNG)] == render_png(final["sceneGraph"])
    result = json.loads(blobs[artifact_key(job_id, RESULT)])
    assert result["jobId"] == job_id
    assert result["request"] == REQUEST
    assert result["artifacts"] == {
        "sceneGraph": artifact_key(job_id, SCENE_GRAPH),
        "asciiMinimap": artifact_key(job_id, ASCII_MINIMAP),
        "minimapPng": artifact_key(job_id, MINIMAP_PNG),
    }
    assert result["summary"] == services.jobs.get(job_id).result_summary
    assert result["metrics"] == final["sceneGraph"]["metrics"]


def test_a_skipped_artifact_is_left_out_and_said_in_the_summary(services, new_job, monkeypatch):
    """A producer raising ArtifactSkipped: no blob, no result key, the job still done, the summary says why."""

    def skip(data):
        raise artifacts.ArtifactSkipped("the node builder is not installed")

    png = next(a for a in artifacts.ARTIFACTS if a.name == MINIMAP_PNG)
    monkeypatch.setattr(
        artifacts,
        "ARTIFACTS",
        tuple(
            artifacts.Artifact(a.name, a.content_type, a.field, skip) if a is png else a for a in artifacts.ARTIFACTS
        ),
    )
    job_id = new_job()
    run_all(services, job_id)
    job = services.jobs.get(job_id)
    assert job.state is JobState.DONE
    assert "minimapPng" not in job.result_keys and "sceneGraph" in job.result_keys
    assert artifact_key(job_id, MINIMAP_PNG) not in services.artifacts.blobs
    assert "; no minimap.png: the node builder is not installed" in job.steps[-1].summary
    assert job.result_summary == job.steps[-1].summary


def test_each_step_reads_the_previous_checkpoint(services, new_job, monkeypatch, in_s3):
    """A step's input is the previous step's checkpointed data, not recomputed or taken from elsewhere."""
    job_id = new_job()
    run_all(services, job_id, pipeline.STEPS[:2])
    key = checkpoint_key(job_id, pipeline.STEPS[1])
    checkpoint = json.loads(services.artifacts.blobs[key])
    checkpoint["data"]["marker"] = "from-checkpoint"
    services.artifacts.blobs[key] = json.dumps(checkpoint).encode()
    seen = []
    monkeypatch.setattr(pipeline, "run_step", lambda name, previous: seen.append(dict(previous)) or _stop())
    with pytest.raises(_Stop):
        run_step(services, job_id, pipeline.STEPS[2])
    assert seen[0]["marker"] == "from-checkpoint"


def test_the_second_step_recomputes_the_first_from_the_request(services, new_job, pipeline_calls):
    """The first step's output is not checkpointed: the second step gets it from the request, byte-exact."""
    job_id = new_job()
    run_all(services, job_id, pipeline.STEPS[:2])
    assert pipeline_calls == [pipeline.STEPS[0], pipeline.STEPS[0], pipeline.STEPS[1]]
    first = json.loads(pipeline.encode_json(pipeline.STEP_FUNCTIONS[pipeline.STEPS[0]](REQUEST).data))
    expected = pipeline.encode_json(pipeline.STEP_FUNCTIONS[pipeline.STEPS[1]](first).data)
    stored = json.loads(zlib.decompress(services.jobs.get(job_id).checkpoint.zlib))["data"]
    assert pipeline.encode_json(stored) == expected


def test_each_step_reads_the_previous_checkpoint_its_item_keeps(services, new_job, monkeypatch):
    """Kept by the previous step's record, the checkpoint comes back with the claim: read from there."""
    job_id = new_job()
    run_all(services, job_id, pipeline.STEPS[:2])
    job = services.jobs.jobs[job_id]
    assert job.checkpoint is not None and job.checkpoint.step == pipeline.STEPS[1]
    checkpoint = json.loads(zlib.decompress(job.checkpoint.zlib))
    checkpoint["data"]["marker"] = "from-the-item"
    marked = RecordedCheckpoint(pipeline.STEPS[1], zlib.compress(json.dumps(checkpoint).encode()))
    services.jobs.jobs[job_id] = replace(job, checkpoint=marked)
    seen = []
    monkeypatch.setattr(pipeline, "run_step", lambda name, previous: seen.append(dict(previous)) or _stop())
    with pytest.raises(_Stop):
        run_step(services, job_id, pipeline.STEPS[2])
    assert seen[0]["marker"] == "from-the-item"
    assert not [key for key in services.artifacts.blobs if "/steps/" in key]


def test_the_item_keeps_only_the_checkpoints_small_enough(services, new_job, monkeypatch, reference_checkpoints):
    """Over RECORD_CHECKPOINT_MAX_BYTES a checkpoint goes to S3, and the record drops the earlier one
    the item kept; a step after it reads S3, not that earlier one."""
    second, third = pipeline.STEPS[1], pipeline.STEPS[2]
    sizes = {step: len(zlib.compress(body)) for step, body in reference_checkpoints.items()}
    assert sizes[second] < sizes[third]
    monkeypatch.setattr(checkpoints, "RECORD_CHECKPOINT_MAX_BYTES", sizes[second])
    job_id = new_job()
    run_all(services, job_id, pipeline.STEPS[:2])
    assert services.jobs.get(job_id).checkpoint.step == second
    assert checkpoint_key(job_id, second) not in services.artifacts.blobs
    run_all(services, job_id, pipeline.STEPS[2:3])
    assert services.jobs.get(job_id).checkpoint is None
    assert checkpoint_key(job_id, third) in services.artifacts.blobs
    run_all(services, job_id, pipeline.STEPS[3:])
    job = services.jobs.get(job_id)
    assert job.state is JobState.DONE and job.checkpoint is None
    final = expected_output()
    assert services.artifacts.blobs[artifact_key(job_id, SCENE_GRAPH)] == pipeline.encode_json(final["sceneGraph"])


class _Stop(Exception):
    pass


def _stop():
    raise _Stop


# --- at-least-once delivery -------------------------------------------------------


def test_step_delivered_twice_is_recorded_once(services, new_job, pipeline_calls):
    """A redelivered step is a duplicate: no second entry, no recomputation, the chain continues."""
    job_id = new_job()
    first = run_step(services, job_id, pipeline.STEPS[0])
    before = services.jobs.get(job_id)
    second = run_step(services, job_id, pipeline.STEPS[0])
    assert first == StepRun(Next.CONTINUE, "recorded")
    assert second == StepRun(Next.CONTINUE, "duplicate")
    after = services.jobs.get(job_id)
    assert len(after.steps) == 1 and after.progress == before.progress
    assert pipeline_calls == [pipeline.STEPS[0]]


def test_every_step_delivered_twice_still_ends_done_once(services, new_job):
    """Each message delivered twice in a row: still one entry per step and a done job."""
    job_id = new_job()
    for step in pipeline.STEPS[:-1]:
        run_step(services, job_id, step)
        assert run_step(services, job_id, step).outcome == "duplicate"
    run_step(services, job_id, LAST)
    job = services.jobs.get(job_id)
    assert job.state is JobState.DONE and len(job.steps) == len(pipeline.STEPS) and job.progress == 1


def test_last_step_after_done_stops_and_changes_nothing(services, new_job, pipeline_calls):
    """The last step redelivered after the job is done: STOP, and neither the job nor the artifacts change."""
    job_id = new_job()
    run_all(services, job_id)
    job_before, puts_before, calls_before = (
        services.jobs.get(job_id),
        list(services.artifacts.puts),
        len(pipeline_calls),
    )
    assert run_step(services, job_id, LAST) == StepRun(Next.STOP, "terminal")
    assert services.jobs.get(job_id) == job_before
    assert services.artifacts.puts == puts_before
    assert len(pipeline_calls) == calls_before


def test_a_failed_last_record_leaves_the_job_to_the_redelivery(services, new_job, monkeypatch):
    """The last step's record (which also marks the job done) fails: the redelivery computes it again and finishes."""
    job_id = new_job()
    run_all(services, job_id, pipeline.STEPS[:-1])
    real_record = services.jobs.record_step

    def flaky(*args, **kwargs):
        raise DependencyUnavailable("dynamodb is unreachable")

    monkeypatch.setattr(services.jobs, "record_step", flaky)
    with pytest.raises(DependencyUnavailable):
        run_step(services, job_id, LAST)
    assert services.jobs.get(job_id).state is JobState.RUNNING
    monkeypatch.setattr(services.jobs, "record_step", real_record)
    expire_leases(services)
    assert run_step(services, job_id, LAST) == StepRun(Next.CONTINUE, "recorded")
    job = services.jobs.get(job_id)
    assert job.state is JobState.DONE and len(job.steps) == len(pipeline.STEPS)
    assert artifact_key(job_id, RESULT) in services.artifacts.blobs


def test_a_last_step_recorded_by_a_step_event_is_published_and_finished(services, new_job, pipeline_calls):
    """The last step recorded from outside (no artifacts, job not done): its delivery publishes and finishes."""
    job_id = new_job()
    run_all(services, job_id, pipeline.STEPS[:-1])
    services.jobs.record_step(job_id, outside_event(job_id, LAST), total_steps=len(pipeline.STEPS))
    pipeline_calls.clear()
    assert run_step(services, job_id, LAST) == StepRun(Next.STOP, "duplicate")
    assert pipeline_calls == [LAST]
    job = services.jobs.get(job_id)
    assert job.state is JobState.DONE and job.progress == 1
    final = expected_output()
    assert services.artifacts.blobs[artifact_key(job_id, SCENE_GRAPH)] == pipeline.encode_json(final["sceneGraph"])


def test_a_step_recorded_by_a_step_event_has_its_checkpoint_recomputed(services, new_job, pipeline_calls):
    """parse_prompt and populate recorded from outside: the chain recomputes their checkpoints and ends done."""
    job_id = new_job()
    for step in (pipeline.STEPS[0], pipeline.STEPS[3]):
        services.jobs.record_step(job_id, outside_event(job_id, step), total_steps=len(pipeline.STEPS))
    runs = run_all(services, job_id)
    assert [run.outcome for run in runs] == [
        "duplicate" if index in (0, 3) else "recorded" for index in range(len(pipeline.STEPS))
    ]
    # The steps run by the chain, plus one recomputation of each step recorded from outside.
    assert sorted(pipeline_calls) == sorted(pipeline.STEPS)
    job = services.jobs.get(job_id)
    assert job.state is JobState.DONE and job.error is None
    assert len(job.steps) == len(pipeline.STEPS)
    final = expected_output()
    assert services.artifacts.blobs[artifact_key(job_id, SCENE_GRAPH)] == pipeline.encode_json(final["sceneGraph"])


def test_a_first_run_reads_the_job_and_its_own_checkpoint_never(services, new_job):
    """The cost of a step that claims: two job writes (claim, record), no job read, and no probe
    for its own checkpoint. The claim returns the item, which keeps the previous checkpoint."""
    job_id = new_job()
    services.jobs.calls.clear()
    run_all(services, job_id)
    steps = len(pipeline.STEPS)
    assert services.jobs.calls == {"claim_step": steps, "record_step": steps}
    assert services.artifacts.gets == []
    assert not [key for key in services.artifacts.puts if "/steps/" in key]


def test_a_first_run_with_its_checkpoints_in_s3_reads_each_once_and_probes_none(services, new_job, in_s3):
    job_id = new_job()
    services.jobs.calls.clear()
    run_all(services, job_id)
    steps = len(pipeline.STEPS)
    assert services.jobs.calls == {"claim_step": steps, "record_step": steps}
    own_checkpoints = {checkpoint_key(job_id, step) for step in pipeline.STEPS}
    # Each read is the previous step's checkpoint, read by the next step; none is a probe.
    assert services.artifacts.gets == [checkpoint_key(job_id, step) for step in pipeline.STEPS[1:-1]]
    assert own_checkpoints & set(services.artifacts.puts) == {
        checkpoint_key(job_id, step) for step in pipeline.STEPS[1:-1]
    }


def test_existing_checkpoint_is_reused_not_recomputed(services, new_job, pipeline_calls):
    """A run killed after its checkpoint but before its record left the checkpoint: the next run reuses it."""
    job_id = new_job()
    run_step(services, job_id, pipeline.STEPS[0])
    step = pipeline.STEPS[1]
    services.jobs.claim_step(job_id, f"{job_id}:{step}", attempt=1, owner="dead-run", lease_seconds=-1)
    first = json.loads(pipeline.encode_json(pipeline.STEP_FUNCTIONS[pipeline.STEPS[0]](REQUEST).data))
    real = pipeline.STEP_FUNCTIONS[step](first)
    checkpoint = {"step": step, "summary": "from the checkpoint", "data": real.data}
    services.artifacts.put(checkpoint_key(job_id, step), pipeline.encode_json(checkpoint), "application/json")
    pipeline_calls.clear()
    assert run_step(services, job_id, step).outcome == "recorded"
    assert pipeline_calls == []
    assert services.jobs.get(job_id).steps[1].summary == "from the checkpoint"


def test_a_resumed_last_step_recomputes_and_finishes(services, new_job, pipeline_calls):
    """The last step has no checkpoint to reuse: a run that takes over its lapsed lease computes it and finishes."""
    job_id = new_job()
    run_all(services, job_id, pipeline.STEPS[:-1])
    services.jobs.claim_step(job_id, f"{job_id}:{LAST}", attempt=1, owner="dead-run", lease_seconds=-1)
    pipeline_calls.clear()
    assert run_step(services, job_id, LAST) == StepRun(Next.CONTINUE, "recorded")
    assert pipeline_calls == [LAST]
    assert services.jobs.get(job_id).state is JobState.DONE
    assert artifact_key(job_id, RESULT) in services.artifacts.blobs


def outside_event(job_id: str, step: str) -> StepEvent:
    """A step event as POST /internal/jobs/<id>/step records it: ok, and no checkpoint written."""
    now = "2026-11-30T00:00:00.000Z"
    return StepEvent(step_id(job_id, step), step, now, now, 1, "recorded from outside", StepStatus.OK)


def expire_leases(services) -> None:
    """Let every lease lapse, as if the runs that took them had died."""
    services.jobs.leases = {key: (owner, 0) for key, (owner, _) in services.jobs.leases.items()}


def test_missing_job_stops_the_chain(services, pipeline_calls):
    """A message for a job that does not exist is dropped: STOP, outcome missing, nothing computed or written."""
    assert run_step(services, str(uuid.uuid4()), pipeline.STEPS[0]) == StepRun(Next.STOP, "missing")
    assert pipeline_calls == [] and services.artifacts.puts == []


# --- failure ------------------------------------------------------------------------


def fail_at(services, job_id: str, step: str, expected: type[BaseException] = Exception) -> JobError:
    """Run ``step`` expecting it to raise ``expected``, then fail the job as StepTask.on_failure does."""
    with pytest.raises(expected) as info:
        run_step(services, job_id, step)
    error = job_error(step, info.value)
    fail_job(services, job_id, step, error)
    return error


@pytest.mark.parametrize("index", range(len(pipeline.STEPS)))
def test_fault_drill_fails_its_step_and_keeps_earlier_steps(services, new_job, index):
    """fail:<step> raises FaultDrill at that step; fail_job keeps earlier steps, adds an error step, job failed."""
    target = pipeline.STEPS[index]
    job_id = new_job(fault_drill=f"fail:{target}")
    run_all(services, job_id, pipeline.STEPS[:index])
    with pytest.raises(FaultDrill):
        run_step(services, job_id, target)
    assert checkpoint_key(job_id, target) not in services.artifacts.blobs
    error = job_error(target, FaultDrill("x"))
    fail_job(services, job_id, target, error)
    job = services.jobs.get(job_id)
    assert job.state is JobState.FAILED
    assert job.error == error and job.error.code == "FAULT_DRILL"
    assert [s.name for s in job.steps] == list(pipeline.STEPS[: index + 1])
    assert [s.status for s in job.steps] == [StepStatus.OK] * index + [StepStatus.ERROR]
    assert job.steps[-1].step_id == step_id(job_id, target)
    assert job.progress == pytest.approx(index / len(pipeline.STEPS))
    assert artifact_key(job_id, RESULT) not in services.artifacts.blobs


def test_steps_after_failure_do_nothing(services, new_job, pipeline_calls):
    """Once failed, every later (or repeated) step stops the chain without computing or writing."""
    job_id = new_job(fault_drill=f"fail:{pipeline.STEPS[1]}")
    run_step(services, job_id, pipeline.STEPS[0])
    fail_at(services, job_id, pipeline.STEPS[1], FaultDrill)
    before, puts, calls = services.jobs.get(job_id), list(services.artifacts.puts), list(pipeline_calls)
    for step in pipeline.STEPS:
        assert run_step(services, job_id, step) == StepRun(Next.STOP, "terminal")
    assert services.jobs.get(job_id) == before
    assert services.artifacts.puts == puts and pipeline_calls == calls


def test_fault_drill_for_another_step_has_no_effect(services, new_job):
    """A drill aimed at one step leaves the others alone."""
    job_id = new_job(fault_drill=f"fail:{LAST}")
    run_all(services, job_id, pipeline.STEPS[:-1])
    assert services.jobs.get(job_id).state is JobState.RUNNING
    with pytest.raises(FaultDrill):
        run_step(services, job_id, LAST)


def test_slow_drill_sleeps_only_at_its_step(services, new_job, monkeypatch):
    """slow:<step> sleeps FAULT_DRILL_SLOW_SECONDS once, at that step, and the job still completes."""
    slept = []
    monkeypatch.setattr(runner.time, "sleep", slept.append)
    job_id = new_job(fault_drill=f"slow:{pipeline.STEPS[2]}")
    run_all(services, job_id)
    assert slept == [services.settings.fault_drill_slow_seconds]
    assert services.jobs.get(job_id).state is JobState.DONE


def test_fail_job_twice_keeps_the_first_error_and_one_error_step(services, new_job):
    """fail_job is idempotent: a second call adds no step and does not overwrite the stored error."""
    job_id = new_job()
    run_step(services, job_id, pipeline.STEPS[0])
    first = JobError("first", "STEP_FAILED", {"step": pipeline.STEPS[1]})
    fail_job(services, job_id, pipeline.STEPS[1], first)
    fail_job(services, job_id, pipeline.STEPS[1], JobError("second", "STEP_TIMEOUT"))
    job = services.jobs.get(job_id)
    assert job.error == first
    assert len(job.steps) == 2


def test_fail_job_on_done_job_changes_nothing(services, new_job):
    """A terminal job is never rewritten: fail_job after done adds no step and keeps it done."""
    job_id = new_job()
    run_all(services, job_id)
    before = services.jobs.get(job_id)
    fail_job(services, job_id, LAST, JobError("late", "STEP_FAILED"))
    assert services.jobs.get(job_id) == before


def test_fail_job_of_missing_job_is_quiet(services):
    """fail_job for a job that does not exist returns without raising."""
    fail_job(services, str(uuid.uuid4()), pipeline.STEPS[0], JobError("x", "STEP_FAILED"))


def test_pipeline_error_propagates_and_maps_to_step_failed(services, new_job):
    """A request the pipeline rejects raises PipelineError from run_step; the job then fails with STEP_FAILED."""
    job_id = new_job(request={"prompt": "a", "seed": 1, "style": "not-a-style"})
    error = fail_at(services, job_id, pipeline.STEPS[0], pipeline.PipelineError)
    assert error.code == "STEP_FAILED" and "rejected its input" in error.message
    job = services.jobs.get(job_id)
    assert job.state is JobState.FAILED and job.error == error


# --- tasks.steps.job_error --------------------------------------------------------------


def test_job_error_fault_drill():
    """FaultDrill -> FAULT_DRILL, naming the step."""
    error = job_error("populate", FaultDrill("fault drill: populate failed on purpose"))
    assert error.code == "FAULT_DRILL"
    assert error.details == {"step": "populate"}
    assert "populate" in error.message


def test_job_error_hard_time_limit():
    """The hard limit (the process killed, as under an outage that outlasts the step) is a timeout too, not
    "STEP_FAILED: TimeLimitExceeded"."""
    error = job_error("layout_rooms", TimeLimitExceeded(10))
    assert (error.code, error.message, error.details) == (
        "STEP_TIMEOUT",
        "layout_rooms ran out of time",
        {"step": "layout_rooms"},
    )


def test_job_error_soft_time_limit():
    """Celery's SoftTimeLimitExceeded -> STEP_TIMEOUT."""
    error = job_error("layout_rooms", SoftTimeLimitExceeded())
    assert error.code == "STEP_TIMEOUT"
    assert error.details == {"step": "layout_rooms"}
    assert "layout_rooms" in error.message


def test_job_error_pipeline_error_keeps_its_reason():
    """PipelineError -> STEP_FAILED; the reason (about the input, safe to show) is kept."""
    error = job_error("connect_doors", pipeline.PipelineError("rooms must be a list"))
    assert error.code == "STEP_FAILED"
    assert "rooms must be a list" in error.message
    assert error.details == {"step": "connect_doors"}


@pytest.mark.parametrize("exc", [RuntimeError("password=hunter2"), KeyError("hunter2"), ZeroDivisionError("hunter2")])
def test_job_error_unexpected_hides_the_message(exc):
    """An unexpected exception -> STEP_FAILED naming the step and the type, never its message."""
    error = job_error("populate", exc)
    assert error.code == "STEP_FAILED"
    assert "hunter2" not in error.message and "hunter2" not in json.dumps(error.to_dict())
    assert type(exc).__name__ in error.message and "populate" in error.message


def test_job_error_project_error_keeps_code_and_details():
    """A project error keeps its own code and details, with the step added."""
    error = job_error(LAST, ArtifactTooLarge("scene is 400000 bytes", details={"bytes": 400000}))
    assert error.code == "ARTIFACT_TOO_LARGE"
    assert error.message == "scene is 400000 bytes"
    assert error.details == {"step": LAST, "bytes": 400000}


def test_job_error_project_subclass_code():
    """The most specific project error's code wins (JobNotFound, not the base INTERNAL)."""
    assert job_error("populate", JobNotFound("no job")).code == "JOB_NOT_FOUND"


def test_a_step_leased_to_another_run_is_not_computed_but_retried_after_the_lease(services, new_job, pipeline_calls):
    """A redelivery while another run holds the step's lease must not compute it side by side."""
    job_id = new_job()
    first = pipeline.STEPS[0]
    claim = services.jobs.claim_step(job_id, f"{job_id}:{first}", attempt=1, owner="other-run", lease_seconds=30)
    assert claim.outcome.value == "claimed"

    result = run_step(services, job_id, first)

    assert result.next is Next.RETRY and result.outcome == "held"
    assert 25 <= result.retry_in <= 31
    assert pipeline_calls == []
    assert services.jobs.get(job_id).steps == ()


def test_an_expired_lease_is_taken_over(services, new_job):
    """A lease whose run died (it lapsed) does not block the step for ever."""
    job_id = new_job()
    first = pipeline.STEPS[0]
    services.jobs.claim_step(job_id, f"{job_id}:{first}", attempt=1, owner="dead-run", lease_seconds=-1)
    assert run_step(services, job_id, first) == StepRun(Next.CONTINUE, "recorded")


def test_a_duplicate_delivery_hands_on_even_when_the_next_step_is_recorded(services, new_job, pipeline_calls):
    """Later steps may have been recorded by step events: the duplicate may be the chain's only carrier."""
    job_id = new_job()
    run_all(services, job_id, pipeline.STEPS[:2])
    calls = len(pipeline_calls)
    assert run_step(services, job_id, pipeline.STEPS[0]) == StepRun(Next.CONTINUE, "duplicate")
    assert run_step(services, job_id, pipeline.STEPS[1]) == StepRun(Next.CONTINUE, "duplicate")
    assert len(pipeline_calls) == calls  # a duplicate computes nothing


def test_a_chain_whose_every_step_was_recorded_by_events_still_ends_done(services, new_job):
    """Every step recorded from outside before the worker got to it: the chain's duplicates finish the job."""
    job_id = new_job()
    for step in pipeline.STEPS:
        services.jobs.record_step(job_id, outside_event(job_id, step), total_steps=len(pipeline.STEPS))
    runs = run_all(services, job_id)
    assert [run.next for run in runs] == [Next.CONTINUE] * (len(pipeline.STEPS) - 1) + [Next.STOP]
    job = services.jobs.get(job_id)
    assert job.state is JobState.DONE and len(job.steps) == len(pipeline.STEPS)
    assert artifact_key(job_id, RESULT) in services.artifacts.blobs
