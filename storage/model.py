"""Jobs, steps and the state machine, as plain values that cross the storage boundary."""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
import uuid
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

# The layout of the execution state that docs/schema.md describes. 1: before entity types and
# explicit ids (items written then are still read, and answer the same).
SCHEMA_VERSION = 2

# Bounds that keep a job item far below DynamoDB's 400 KB item limit (docs/schema.md, "Sizes").
MAX_ATTEMPTS = 10  # 1 + at most 9 operator retries; mark_retry's condition refuses the 11th
MAX_STEPS_PER_ATTEMPT = 8  # pipeline steps (a unit test holds pipeline.STEPS to it): records per attempt
MAX_JOB_ITEM_BYTES = 250_000  # the largest job item these bounds allow (measured: ~222 KB), under 400 KB
MAX_SUMMARY_CHARS = 500  # a step's or a job's summary
MAX_MESSAGE_CHARS = 1000  # an error's message
MAX_DETAILS_BYTES = 4096  # an error's details, as JSON
MAX_NOTE_CHARS = 200  # an operator action's "by" and "reason"


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
    STALE = "stale"  # the record names an attempt the job has moved past (only when it names one)


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


def request_fingerprint(request: dict[str, Any]) -> str:
    """A stable digest of a validated request body, to tell a replay from a different body."""
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def is_job_id(value: str) -> bool:
    """True when ``value`` is a well-formed job id."""
    return bool(JOB_ID_PATTERN.fullmatch(value))


def lease_owner(delivery: str, run: int, nonce: str) -> str:
    """Who holds a step's lease: one run (``nonce``) of one try (``run``) of one message (``delivery``).

    ``delivery`` is the Celery task id, which Celery's retries and SQS's redeliveries keep, and
    ``run`` counts Celery's retries of it, so a lease taken by an earlier try of the same message
    (whose claim was applied but answered with an error) is recognised as this message's own
    (see ``owns_lease``). Zero-padded, so an earlier try's owner sorts below a later one's.
    """
    return f"{delivery}/{run:04d}/{nonce}"


def earlier_tries_prefix(owner: str) -> tuple[str, str] | None:
    """(the message's prefix, this try's prefix) of a ``lease_owner``; None for any other owner.

    A lease whose owner starts with the first and sorts below the second was taken by an earlier
    try of the same message: that try has ended (Celery sends a retry before the try returns).
    """
    delivery, sep, _nonce = owner.rpartition("/")
    message, sep2, run = delivery.rpartition("/")
    if not (sep and sep2 and message and len(run) == 4 and run.isdigit()):
        return None
    return f"{message}/", f"{delivery}/"


# The run part of a lease handed on with a step's message (``handed_owner``), in place of a nonce.
HANDED = "handed"


def handed_owner(delivery: str) -> str:
    """The lease a step's record hands to the next step's message (Celery task id ``delivery``).

    Written in the record of the step before, so that message's first try computes at once,
    without a claim of its own: the lease is its already (tasks/runner.py). A later try of the
    same message owns it as an earlier try's (``owns_lease``). The first step's lease is handed
    the same way by the item the API writes (tasks/dispatch.py: submit_job).
    """
    return lease_owner(delivery, 0, HANDED)


def is_handed(owner: str) -> bool:
    """True for a lease handed on with a message (``handed_owner``), not taken by a claim."""
    return owner.endswith(lease_owner("", 0, HANDED))


def owns_lease(owner: str, held: str) -> bool:
    """True when a lease held by ``held`` was taken by ``owner`` or by an earlier try of its message."""
    if held == owner:
        return True
    prefixes = earlier_tries_prefix(owner)
    return prefixes is not None and held.startswith(prefixes[0]) and held < prefixes[1]


def step_id(job_id: str, step: str, attempt: int = 1) -> str:
    """The deterministic id under which a step of a job is recorded once per attempt.

    ``{jobId}:{step}`` in the first attempt, ``{jobId}:{step}#{attempt}`` in a
    retry, so a step re-run by a retry never collides with what was recorded before.
    """
    return f"{job_id}:{step}" if attempt == 1 else f"{job_id}:{step}#{attempt}"


def parse_step_id(value: str) -> tuple[str, str, int]:
    """(jobId, step, attempt) of a stepId made by ``step_id``."""
    job_id, _, rest = value.partition(":")
    name, _, attempt = rest.partition("#")
    return job_id, name, int(attempt) if attempt.isdigit() else 1


def attempt_id(job_id: str, attempt: int) -> str:
    """The id of a job's attempt: ``{jobId}:attempt:{n}``."""
    return f"{job_id}:attempt:{attempt}"


def bounded(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, an ellipsis marking the cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


class ActionKind(StrEnum):
    RETRY = "retry"
    CANCEL = "cancel"


def retry_record(job_id: str, *, attempt: int, at: str, reason: str, by: str, from_step: str) -> dict[str, Any]:
    """The ``attempts`` entry of an operator's retry: the attempt it starts, and the action itself."""
    return {
        "attemptId": attempt_id(job_id, attempt),
        "jobId": job_id,
        "attempt": attempt,
        "at": at,
        "reason": bounded(reason, MAX_NOTE_CHARS),
        "by": bounded(by, MAX_NOTE_CHARS),
        "fromStep": from_step,
        "actionId": f"{job_id}:{ActionKind.RETRY}:{attempt}",
    }


def cancel_record(job_id: str, *, at: str, by: str, reason: str) -> dict[str, Any]:
    """The ``cancellation`` of a job: who cancelled it, why and when (a job is cancelled once)."""
    return {
        "actionId": f"{job_id}:{ActionKind.CANCEL}",
        "jobId": job_id,
        "kind": ActionKind.CANCEL.value,
        "at": at,
        "by": bounded(by, MAX_NOTE_CHARS),
        "reason": bounded(reason, MAX_NOTE_CHARS),
    }


def utc_now() -> str:
    """Now, as ISO 8601 UTC with milliseconds, e.g. ``2026-11-22T03:17:56.123Z``."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class JobError:
    message: str
    code: str
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Errors come from exceptions and step events: bounded here, so no error can
        # push its job item towards DynamoDB's item limit.
        object.__setattr__(self, "message", bounded(self.message, MAX_MESSAGE_CHARS))
        size = len(json.dumps(self.details, default=str).encode("utf-8", "surrogatepass"))
        if size > MAX_DETAILS_BYTES:
            object.__setattr__(self, "details", {"truncated": True, "bytes": size})

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"message": self.message, "code": self.code}
        if self.details:
            out["details"] = self.details
        return out

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> JobError:
        return cls(message=raw["message"], code=raw["code"], details=dict(raw.get("details") or {}))


@dataclass(frozen=True)
class Completion:
    """What marking a job done stores: its artifacts' keys and the final summary."""

    result_keys: dict[str, Any]
    summary: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "summary", bounded(self.summary, MAX_SUMMARY_CHARS))


@dataclass(frozen=True)
class StepEvent:
    step_id: str
    name: str
    started_at: str
    ended_at: str
    duration_ms: int
    summary: str
    status: StepStatus = StepStatus.OK

    def __post_init__(self) -> None:
        object.__setattr__(self, "summary", bounded(self.summary, MAX_SUMMARY_CHARS))

    @property
    def job_id(self) -> str:
        return parse_step_id(self.step_id)[0]

    @property
    def attempt(self) -> int:
        return parse_step_id(self.step_id)[2]

    def to_dict(self) -> dict[str, Any]:
        return {
            "stepId": self.step_id,
            "jobId": self.job_id,
            "attempt": self.attempt,
            "name": self.name,
            "startedAt": self.started_at,
            "endedAt": self.ended_at,
            "durationMs": self.duration_ms,
            "summary": self.summary,
            "status": str(self.status),
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> StepEvent:
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
class HandedLease:
    """The next step's lease, taken in a step's record for the message that will carry it."""

    step_id: str
    owner: str
    lease_seconds: float


@dataclass(frozen=True)
class RecordedCheckpoint:
    """A step's checkpoint as its record keeps it in the job's item: the step's name and its
    checkpoint's bytes, zlib-compressed (tasks/checkpoints.py). The item holds one, the latest
    recorded step's that was small enough; a bigger one is an object in the bucket instead."""

    step: str
    zlib: bytes


# What a compressed checkpoint (in a record or a message) may inflate to: far above any level's
# checkpoint (a 1,000-room one is under 1 MB), so a forged one cannot make a worker inflate
# gigabytes.
INFLATED_MAX_BYTES = 16 * 1024 * 1024


def inflate(compressed: bytes) -> bytes | None:
    """zlib-compressed bytes inflated, or None if they do not inflate within INFLATED_MAX_BYTES."""
    try:
        inflater = zlib.decompressobj()
        body = inflater.decompress(compressed, INFLATED_MAX_BYTES)
    except zlib.error:
        return None
    return None if inflater.unconsumed_tail or not inflater.eof else body


@dataclass(frozen=True)
class StepLease:
    """A run's claim to compute one step, until ``expires_at_ms``."""

    step_id: str
    owner: str
    expires_at_ms: int


@dataclass(frozen=True)
class Job:
    job_id: str
    state: JobState
    created_at: str
    updated_at: str
    request: dict[str, Any]
    total_steps: int
    ttl: int
    plugin: str = "rooms-v1"
    progress: float = 0.0
    steps: tuple[StepEvent, ...] = ()
    step_ids: frozenset[str] = frozenset()
    result_keys: dict[str, Any] = field(default_factory=dict)
    result_summary: str | None = None
    error: JobError | None = None
    fault_drill: str | None = None
    idempotency_key: str | None = None
    request_fingerprint: str | None = None
    attempt: int = 1
    attempts: tuple[dict[str, Any], ...] = ()  # operator retries, each a retry_record
    cancellation: dict[str, Any] | None = None  # a cancel_record, once cancelled by an operator
    leases: tuple[StepLease, ...] = ()  # steps being computed right now
    checkpoint: RecordedCheckpoint | None = None  # the latest recorded step's, if its record kept it

    def completed_steps(self) -> list[str]:
        """Names of the steps recorded ok, in any attempt."""
        return [step.name for step in self.steps if step.status is StepStatus.OK]

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL_STATES

    @property
    def prompt_preview(self) -> str:
        return preview(str(self.request.get("prompt", "")), PREVIEW_LENGTH)


PREVIEW_LENGTH = 80  # code points, at most: a job list's prompt column
_ZWJ = "\u200d"


def preview(text: str, limit: int) -> str:
    """``text``'s first ``limit`` code points, less any that would split a character as a reader sees
    it: an accent from its letter, a joined emoji (a family, a skin tone) from its parts, a flag
    from its other half. The prompt is any Unicode; its preview must not end in a broken glyph.
    """
    if len(text) <= limit:
        return text
    cut = limit
    while cut > 0 and _joined(text, cut):
        cut -= 1
    return text[:cut]


def _joined(text: str, at: int) -> bool:
    """Whether ``text[at]`` belongs to the same grapheme as ``text[at - 1]`` (the common cases)."""
    char, before = text[at], text[at - 1]
    if before == _ZWJ or char == _ZWJ or unicodedata.category(char) in ("Mn", "Mc", "Me"):
        return True  # a joiner, a combining mark, a variation selector (Mn) or a keycap (Me)
    if 0x1F3FB <= ord(char) <= 0x1F3FF or 0xE0020 <= ord(char) <= 0xE007F:
        return True  # a skin tone; a tag of a subdivision flag
    if _regional(char) and _regional(before):
        # Flags are pairs of regional indicators: this one ends a pair if an odd run precedes it.
        run = 0
        while at - run - 1 >= 0 and _regional(text[at - run - 1]):
            run += 1
        return run % 2 == 1
    return False


def _regional(char: str) -> bool:
    return 0x1F1E6 <= ord(char) <= 0x1F1FF


@dataclass(frozen=True)
class ArtifactInfo:
    """A stored blob (S3 object or demo-mode item), described without its bytes."""

    key: str
    job_id: str
    content_type: str
    size: int


ARTIFACTS_ROOT = "jobs/"  # every checkpoint and artifact is stored under it


def artifact_prefix(job_id: str) -> str:
    """Where every checkpoint and artifact of a job is stored: ``jobs/{jobId}/``."""
    return f"{ARTIFACTS_ROOT}{job_id}/"


CHECKPOINT_CONTENT_TYPE = "application/json"


def checkpoint_key(job_id: str, step: str) -> str:
    """The S3 key of one step's checkpoint (where a big one is stored, and where an export puts
    the one a job's item keeps)."""
    return f"{artifact_prefix(job_id)}steps/{step}.json"


def job_of_artifact(key: str) -> str:
    """The job id in an artifact key ``jobs/{jobId}/...``; empty when the key is not a job's."""
    parts = key.split("/", 2)
    return parts[1] if len(parts) == 3 and f"{parts[0]}/" == ARTIFACTS_ROOT and is_job_id(parts[1]) else ""


@dataclass(frozen=True)
class JobPage:
    jobs: tuple[Job, ...]
    cursor: str | None
