"""Jobs, steps and the state machine, as plain values that cross the storage boundary."""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL_STATES = frozenset({JobState.DONE, JobState.FAILED, JobState.CANCELLED})

# The only edges a job may take. State moves forward; the terminal states
# have no way out (an operator retry, added later, is its own edge).
TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    JobState.QUEUED: frozenset({JobState.RUNNING, JobState.FAILED, JobState.CANCELLED}),
    JobState.RUNNING: frozenset({JobState.DONE, JobState.FAILED, JobState.CANCELLED}),
    JobState.DONE: frozenset(),
    JobState.FAILED: frozenset(),
    JobState.CANCELLED: frozenset(),
}


# The one exit from a terminal state: an operator's retry of a failed job,
# recorded as a new attempt (mark_retry), never an ordinary transition.
RETRYABLE_STATES = frozenset({JobState.FAILED})


def can_transition(current: JobState, target: JobState) -> bool:
    """True when a job in ``current`` may move to ``target``."""
    return target in TRANSITIONS[current]


def sources_of(target: JobState) -> frozenset[JobState]:
    """Every state from which ``target`` can be reached in one write."""
    return frozenset(state for state, targets in TRANSITIONS.items() if target in targets)


class RecordOutcome(StrEnum):
    RECORDED = "recorded"
    DUPLICATE = "duplicate"
    TERMINAL = "terminal"


class ClaimOutcome(StrEnum):
    """What claiming a step's lease found."""

    CLAIMED = "claimed"  # this run holds the lease: compute the step
    HELD = "held"  # another run holds an unexpired lease: try again after it
    DUPLICATE = "duplicate"  # the step is already recorded
    TERMINAL = "terminal"  # the job is done, failed or cancelled
    STALE = "stale"  # the message belongs to an earlier attempt (an operator retried the job since)
    MISSING = "missing"  # there is no such job


@dataclass(frozen=True)
class Claim:
    outcome: ClaimOutcome
    expires_at_ms: int = 0  # with CLAIMED: when this run's lease runs out; with HELD: the other run's
    # The job as it stood just before the claim (None when MISSING): the claim is the step's only
    # read of the job item. With CLAIMED the job is now running, whatever ``job.state`` says.
    job: Job | None = None
    # With CLAIMED: an earlier run took this step's lease and never recorded it (it died or hung),
    # so it may have left the step's checkpoint behind.
    resumed: bool = False


class StepStatus(StrEnum):
    OK = "ok"
    ERROR = "error"


JOB_ID_PATTERN = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def new_job_id() -> str:
    """A fresh job id (a random UUID, lower case, hyphenated)."""
    return str(uuid.uuid4())


def job_id_for_key(idempotency_key: str) -> str:
    """The job id an Idempotency-Key maps to: the same key always names the same job.

    Deriving the id makes the job's own conditional create the idempotency
    check, with no second item to keep in step, and the key lives exactly as
    long as the job. Shaped as a version-4 UUID so it is a well-formed job id.
    """
    digest = bytearray(hashlib.sha256(b"ghost-engine/idempotency/" + idempotency_key.encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x40
    digest[8] = (digest[8] & 0x3F) | 0x80
    return str(uuid.UUID(bytes=bytes(digest)))


def request_fingerprint(request: dict) -> str:
    """A stable digest of a validated request body, to tell a replay from a different body."""
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def is_job_id(value: str) -> bool:
    """True when ``value`` is a well-formed job id."""
    return bool(JOB_ID_PATTERN.fullmatch(value))


def step_id(job_id: str, step: str, attempt: int = 1) -> str:
    """The deterministic id under which a step of a job is recorded once per attempt.

    ``{jobId}:{step}`` in the first attempt, ``{jobId}:{step}#{attempt}`` in a
    retry, so a step re-run by a retry never collides with what was recorded before.
    """
    return f"{job_id}:{step}" if attempt == 1 else f"{job_id}:{step}#{attempt}"


def attempt_of(step_id_: str) -> int:
    """The attempt a step id belongs to (the inverse of step_id's ``#{attempt}`` suffix)."""
    _, _, suffix = step_id_.rpartition("#")
    return int(suffix) if suffix.isdigit() and "#" in step_id_ else 1


def utc_now() -> str:
    """Now, as ISO 8601 UTC with milliseconds, e.g. ``2026-11-22T03:17:56.123Z``."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class JobError:
    message: str
    code: str
    details: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        out = {"message": self.message, "code": self.code}
        if self.details:
            out["details"] = self.details
        return out

    @classmethod
    def from_dict(cls, raw: dict) -> JobError:
        return cls(message=raw["message"], code=raw["code"], details=dict(raw.get("details") or {}))


@dataclass(frozen=True)
class Completion:
    """What marking a job done stores: its artifacts' keys and the final summary."""

    result_keys: dict
    summary: str


@dataclass(frozen=True)
class StepEvent:
    step_id: str
    name: str
    started_at: str
    ended_at: str
    duration_ms: int
    summary: str
    status: StepStatus = StepStatus.OK

    def to_dict(self) -> dict:
        return {
            "stepId": self.step_id,
            "name": self.name,
            "startedAt": self.started_at,
            "endedAt": self.ended_at,
            "durationMs": self.duration_ms,
            "summary": self.summary,
            "status": str(self.status),
        }

    @classmethod
    def from_dict(cls, raw: dict) -> StepEvent:
        return cls(
            step_id=raw["stepId"],
            name=raw["name"],
            started_at=raw["startedAt"],
            ended_at=raw["endedAt"],
            duration_ms=int(raw["durationMs"]),
            summary=raw["summary"],
            status=StepStatus(raw["status"]),
        )


@dataclass(frozen=True)
class Job:
    job_id: str
    state: JobState
    created_at: str
    updated_at: str
    request: dict
    total_steps: int
    ttl: int
    plugin: str = "rooms-v1"
    progress: float = 0.0
    steps: tuple[StepEvent, ...] = ()
    step_ids: frozenset[str] = frozenset()
    result_keys: dict = field(default_factory=dict)
    result_summary: str | None = None
    error: JobError | None = None
    fault_drill: str | None = None
    idempotency_key: str | None = None
    request_fingerprint: str | None = None
    attempt: int = 1
    attempts: tuple[dict, ...] = ()  # retries: {attempt, at, reason, by, fromStep}

    def completed_steps(self) -> list[str]:
        """Names of the steps recorded ok, in any attempt."""
        return [step.name for step in self.steps if step.status is StepStatus.OK]

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL_STATES

    @property
    def prompt_preview(self) -> str:
        return self.request.get("prompt", "")[:80]


@dataclass(frozen=True)
class JobPage:
    jobs: tuple[Job, ...]
    cursor: str | None
