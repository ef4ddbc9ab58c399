"""A client load for the faulted stack: submit under Idempotency-Keys, retry as a client should, wait for done.

And the checks every faulted run ends with: read straight from the emulator (not through the
proxy), each job done with each step recorded once, its artifacts byte-identical to a
fault-free run of the same request, one job per key.
"""

from __future__ import annotations

import dataclasses
import random
import statistics
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import requests

import pipeline
from storage.bootstrap import Services, build_services
from storage.model import JobState
from storage.settings import Settings
from tasks import metrics
from tasks.runner import run_step
from tests.fakes import FakeArtifactStore, FakeJobStore

REQUESTS = (
    {"prompt": "a spooky hallway", "seed": 123, "style": "doom"},
    {"prompt": "a flooded crypt", "seed": 7, "style": "doom"},
    {"prompt": "a vast cave", "seed": 99, "style": "cave"},
    {"prompt": "a quiet library", "seed": 2024, "style": "doom"},
)
ALLOWED = frozenset({200, 202})
TERMINAL = frozenset({"done", "failed", "cancelled"})


@dataclass
class Submission:
    key: str
    body: dict
    job_id: str | None = None
    submitted: float = 0.0  # time.monotonic() of the first POST
    accepted: float = 0.0  # of the 202
    done: float = 0.0  # when /status first said done
    state: str | None = None
    posts: int = 0

    @property
    def latency(self) -> float:
        return self.done - self.submitted


@dataclass
class Answers:
    """Every status code the API answered with, and any answer a client must never see."""

    codes: Counter[int] = field(default_factory=Counter)
    bad: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def note(self, method: str, response: requests.Response) -> None:
        with self.lock:
            self.codes[response.status_code] += 1
            code = response.status_code
            if code >= 500 and not (code == 503 and response.headers.get("Retry-After")):
                self.bad.append(f"{method} {response.url} -> {code} {response.text[:200]}")


class Client:
    """What a careful client does: retry a 503 after Retry-After, and a lost answer, under the same key."""

    def __init__(
        self,
        api_url: str,
        answers: Answers,
        *,
        seed: int = 0,
        poll: float = 0.25,
        exited: Callable[[], list[str]] | None = None,
    ) -> None:
        self.api = api_url
        self.poll = poll
        self.answers = answers
        self.random = random.Random(seed)
        self.exited = exited

    def _stack_running(self) -> None:
        """Fail at once when a process of the stack died: no job would finish (or the timeout says why)."""
        if self.exited is not None and (dead := self.exited()):
            raise AssertionError(f"the stack's {', '.join(dead)} exited (see its log)")

    def submit(self, sub: Submission, *, deadline: float) -> None:
        sub.submitted = sub.submitted or time.monotonic()
        while time.monotonic() < deadline:
            self._stack_running()
            sub.posts += 1
            try:
                response = requests.post(
                    f"{self.api}/generate-scene", json=sub.body, headers={"Idempotency-Key": sub.key}, timeout=10
                )
            except requests.RequestException:
                time.sleep(0.5)
                continue
            self.answers.note("POST", response)
            if response.status_code in ALLOWED:
                job_id = response.json()["jobId"]
                assert sub.job_id in (None, job_id), f"key {sub.key} named {sub.job_id} and then {job_id}"
                sub.job_id, sub.accepted = job_id, sub.accepted or time.monotonic()
                return
            if response.status_code == 503:
                time.sleep(float(response.headers.get("Retry-After", 1)))
                continue
            raise AssertionError(f"POST answered {response.status_code}: {response.text[:300]}")
        raise AssertionError(f"key {sub.key} never accepted")

    def wait(self, sub: Submission, *, deadline: float) -> None:
        while time.monotonic() < deadline:
            self._stack_running()
            try:
                response = requests.get(f"{self.api}/status/{sub.job_id}", timeout=10)
            except requests.RequestException:
                time.sleep(0.3)
                continue
            self.answers.note("GET", response)
            if response.status_code == 200:
                sub.state = response.json()["state"]
                if sub.state in TERMINAL:
                    sub.done = time.monotonic()
                    return
            time.sleep(self.poll)

    def run(self, sub: Submission, *, deadline: float) -> Submission:
        self.submit(sub, deadline=deadline)
        if self.random.random() < 0.3:
            self.submit(sub, deadline=deadline)  # a client that retries anyway: the same job
        self.wait(sub, deadline=deadline)
        return sub


def new_submissions(count: int, *, tag: str = "") -> list[Submission]:
    return [
        Submission(key=f"fault-{tag}{i}-{uuid.uuid4().hex[:8]}", body=dict(REQUESTS[i % len(REQUESTS)]))
        for i in range(count)
    ]


def run_load(
    api_url: str,
    subs: list[Submission],
    *,
    threads: int,
    deadline: float,
    spread: float = 0.0,
    exited: Callable[[], list[str]] | None = None,
) -> Answers:
    """Run every submission's client (start times spread over ``spread`` seconds); wait for all.

    With ``exited`` (the stack's: names of its processes that died), a client fails as soon as
    one did, instead of waiting for jobs nothing will finish until the deadline or the timeout."""
    answers = Answers()
    begin = time.monotonic()

    def one(index: int, sub: Submission) -> Submission:
        time.sleep(max(0.0, begin + spread * index / max(1, len(subs)) - time.monotonic()))
        return Client(api_url, answers, seed=index, exited=exited).run(sub, deadline=deadline)

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, range(len(subs)), subs))
    return answers


def direct_services(settings: Settings, emulator_url: str) -> Services:
    """The stack's stores, reached straight at the emulator: what is stored, unfaulted."""
    return build_services(
        dataclasses.replace(settings, aws_endpoint_url=emulator_url, aws_timeout_seconds=10, aws_max_attempts=3)
    )


_REFERENCE: dict[str, dict[str, bytes]] = {}
CHECKPOINTS = "steps/"  # under a job's prefix: tasks/checkpoints.py's checkpoint_key


def reference_artifacts(body: dict, settings: Settings) -> dict[str, bytes]:
    """A fault-free run of ``body`` through every step, in process: its objects, the job id replaced
    by ID — every checkpoint among them, as if each were too big for its step's record."""
    key = repr(sorted(body.items()))
    if key not in _REFERENCE:
        from tasks import checkpoints
        from tasks.dispatch import submit_job

        services = Services(settings=settings, jobs=FakeJobStore(), artifacts=FakeArtifactStore())
        job, _ = submit_job(services.jobs, body, ttl_days=1, enqueue=lambda *a, **k: None)
        emit, metrics._emit = metrics._emit, lambda *a, **k: None  # no metrics from a reference run
        kept, checkpoints.RECORD_CHECKPOINT_MAX_BYTES = checkpoints.RECORD_CHECKPOINT_MAX_BYTES, 0
        try:
            for step in pipeline.STEPS:
                run_step(services, job.job_id, step)
        finally:
            metrics._emit = emit
            checkpoints.RECORD_CHECKPOINT_MAX_BYTES = kept
        _REFERENCE[key] = objects_of(services, job.job_id, blobs=services.artifacts.blobs)
    return _REFERENCE[key]


def objects_of(services: Services, job_id: str, *, blobs: dict[str, bytes] | None = None) -> dict[str, bytes]:
    """The objects under a job's prefix (artifacts and checkpoints), named without it, the id replaced."""
    prefix = f"jobs/{job_id}/"
    if blobs is None:
        blobs = {info.key: services.artifacts.get(info.key) for info in services.artifacts.artifacts_of(job_id)}
    return {k[len(prefix) :]: v.replace(job_id.encode(), b"ID") for k, v in blobs.items() if k.startswith(prefix)}


def check_outcome(subs: list[Submission], stored: Services) -> list[str]:
    """What went wrong, read from the store itself; empty when every job is done, once, with the right bytes."""
    problems = []
    for sub in subs:
        if sub.job_id is None:
            problems.append(f"{sub.key}: never accepted")
            continue
        job = stored.jobs.get(sub.job_id)
        if job.state is not JobState.DONE:
            problems.append(f"{sub.job_id}: {job.state} {job.error}")
            continue
        ids = [step.step_id for step in job.steps]
        if len(ids) != len(set(ids)) or set(ids) != set(job.step_ids):
            problems.append(f"{sub.job_id}: steps recorded more than once: {ids}")
        if set(job.completed_steps()) != set(pipeline.STEPS):
            problems.append(f"{sub.job_id}: steps missing: {job.completed_steps()}")
        expected = reference_artifacts(sub.body, stored.settings)
        got = objects_of(stored, sub.job_id)
        # Every artifact, as a fault-free run makes it. A checkpoint is kept in its step's record,
        # and is an object only where a repair (a redelivery, a step recomputed) stored it: then
        # it is the fault-free run's too.
        wanted = {name for name in expected if not name.startswith(CHECKPOINTS)} | set(got)
        differ = sorted(name for name in wanted if got.get(name) != expected.get(name))
        if differ:
            problems.append(f"{sub.job_id}: artifacts differ from a fault-free run: {differ}")
    # One job per key: no other job in the table.
    listed, cursor = [], None
    while True:
        page = stored.jobs.list_jobs(limit=100, cursor=cursor)
        listed += [job.job_id for job in page.jobs]
        if page.cursor is None:
            break
        cursor = page.cursor
    if sorted(listed) != sorted(sub.job_id for sub in subs if sub.job_id):
        problems.append(f"jobs in the table {len(listed)} != keys {len(subs)}")
    return problems


def latency_figures(subs: list[Submission]) -> dict[str, float]:
    latencies = sorted(sub.latency for sub in subs if sub.done)
    if not latencies:
        return {"p50": float("nan"), "p99": float("nan"), "max": float("nan")}
    p99 = latencies[min(len(latencies) - 1, int(round(0.99 * (len(latencies) - 1))))]
    return {"p50": statistics.median(latencies), "p99": p99, "max": latencies[-1]}
