"""Jobs under faults (issue 13, points 4 and 5): the emulator, the fault proxy, real workers and gunicorn.

Every AWS request of the API and the workers goes through the proxy. Each test prints its
figures (jobs, faults by service and kind, latency p50/p99); docs/reliability.md records them.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import threading
import time
from collections import Counter

import pytest

from tests.faults.load import check_outcome, direct_services, latency_figures, new_submissions, run_load

# Serial: every job must be done within 60 s, which holds on a machine not also running other tests.
pytestmark = [pytest.mark.integration, pytest.mark.serial]

# Every service faulted, SQS too (the worker survives its faults: tasks/sqs_fanout.py).
SERVICES = ("dynamodb", "s3", "sqs", "sns")
# Under `make test COVERAGE=1` (what CI runs) every line the workers run is traced, which makes a
# step about three times slower (README, "Coverage"). The load's deadline
# and the promptness bound stretch by as much there; plain `make test` holds every job to 60 s.
SLOWDOWN = 3 if os.environ.get("COVERAGE_RUN") else 1
PROMPT_SECONDS = 60 * SLOWDOWN


def start(make_faulted_stack, *, workers: int = 1, concurrency: int = 2):
    """A faulted stack with production's visibility timeout (15 s) and step limit (120 s).

    The visibility timeout is what a lost ReceiveMessage answer costs (SQS hid the message, the
    worker never saw it) and what a killed worker's message waits; the worker keeps the messages
    it holds invisible meanwhile (tasks/sqs_visibility.py), so a step may take longer than it.
    """
    stack = make_faulted_stack({})
    for n in range(workers):
        stack.start_worker(f"worker{n + 1}", concurrency=concurrency)
    stack.start_api()
    return stack


def redeliveries(stack) -> Counter[str]:
    """Per job, the messages SQS handed out again: its workers' step.redelivered lines."""
    counts: Counter[str] = Counter()
    for path in stack.log_dir.glob("worker*.log"):
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            if '"step.redelivered"' in line:
                with contextlib.suppress(ValueError, KeyError):
                    counts[json.loads(line)["jobId"]] += 1
    return counts


def report(title: str, subs, answers, proxy, started: float) -> dict:
    figures = latency_figures(subs)
    print(
        f"\n== {title}: {len(subs)} jobs in {time.monotonic() - started:.0f} s;"
        f" latency p50 {figures['p50']:.1f} s, p99 {figures['p99']:.1f} s, max {figures['max']:.1f} s;"
        f" API answers {dict(sorted(answers.codes.items()))}; POSTs {sum(s.posts for s in subs)}\n"
        f"faults injected (requests per service, faults per kind):\n{proxy.report()}",
        flush=True,
    )
    return figures


def assert_all_well(stack, emulator, subs, answers) -> None:
    assert not answers.bad, answers.bad[:5]
    problems = check_outcome(subs, direct_services(stack.settings, emulator.emulator_url))
    assert not problems, problems[:10]
    assert not stack.exited(), f"exited: {stack.exited()}"


def test_ten_percent_of_requests_faulted_every_job_done_once_within_60_s(make_faulted_stack, proxy, emulator):
    stack = start(make_faulted_stack, workers=1, concurrency=2)
    subs = new_submissions(16, tag="ten-")
    proxy.set_faults(0.10, services=SERVICES)
    started = time.monotonic()
    answers = run_load(stack.api_url, subs, threads=6, deadline=started + 150 * SLOWDOWN, spread=6, exited=stack.exited)
    proxy.clear()
    figures = report("10 % mixed faults", subs, answers, proxy, started)
    assert_all_well(stack, emulator, subs, answers)
    assert sum(proxy.faults.values()) > 20, "the proxy faulted too little to show anything"
    assert all(sub.latency <= PROMPT_SECONDS for sub in subs), [round(sub.latency, 1) for sub in subs]
    assert figures["max"] <= PROMPT_SECONDS


def test_twenty_percent_and_an_outage_of_each_service_lose_and_duplicate_nothing(make_faulted_stack, proxy, emulator):
    stack = start(make_faulted_stack, workers=1, concurrency=2)
    subs = new_submissions(20, tag="out-")
    outage = 20
    proxy.set_faults(0.20, services=SERVICES)
    started = time.monotonic()
    stop = threading.Event()

    def outages() -> None:
        # One service after the other, the 20 % faults on all of them throughout.
        for service in SERVICES:
            print(f"  outage of {service} for {outage} s", flush=True)
            proxy.outage(service, outage)
            if stop.wait(outage):
                return
        proxy.clear()

    outages_thread = threading.Thread(target=outages, daemon=True)
    outages_thread.start()
    faults_end = started + len(SERVICES) * outage
    answers = run_load(
        stack.api_url,
        subs,
        threads=5,
        deadline=faults_end + 90 * SLOWDOWN,
        spread=faults_end - started - 5,
        exited=stack.exited,
    )
    stop.set()
    outages_thread.join()
    proxy.clear()
    report(f"20 % faults and a {outage} s outage of each of {', '.join(SERVICES)}", subs, answers, proxy, started)
    assert_all_well(stack, emulator, subs, answers)
    late = [
        round(sub.done - faults_end, 1) for sub in subs if sub.done - max(faults_end, sub.submitted) > PROMPT_SECONDS
    ]
    assert not late, f"done more than {PROMPT_SECONDS} s after the faults ended: {late}"


def test_workers_killed_at_random_moments_under_faults_lose_and_duplicate_nothing(make_faulted_stack, proxy, emulator):
    # Kills every 4-9 s meet a job two or three times. Each costs it about the visibility timeout:
    # its worker's messages come back only then, and a step killed between its claim and its
    # record is leased for as long (runner.lease_seconds; before leases were renewed, such a step
    # waited out the step limit + 5 s, 125 s). Production's 15 s timeout and 120 s step limit.
    stack = start(make_faulted_stack, workers=2, concurrency=1)
    subs = new_submissions(10, tag="kill-")
    proxy.set_faults(0.10, services=SERVICES)
    started = time.monotonic()
    stop = threading.Event()
    kills: list[str] = []
    chance = random.Random(5)

    def killer() -> None:
        while not stop.wait(chance.uniform(4, 9)):
            name = chance.choice(["worker1", "worker2"])
            stack.stop_process(name, kill=True)  # SIGKILL to its process group: mid-step, mid-request
            kills.append(name)
            stack.start_worker(name, concurrency=1)  # as ECS starts a replacement task

    killing = threading.Thread(target=killer, daemon=True)
    killing.start()
    answers = run_load(stack.api_url, subs, threads=4, deadline=started + 150 * SLOWDOWN, spread=10)
    stop.set()
    killing.join()
    proxy.clear()
    report(f"10 % faults, {len(kills)} workers SIGKILLed", subs, answers, proxy, started)
    assert kills, "no worker was killed"
    assert_all_well(stack, emulator, subs, answers)
    # Each message SQS handed out again cost its job a visibility timeout (its lease lapses with
    # it); nothing else may hold a job up. A flat bound failed now and then: 9 kills met one job
    # four times (63.8 s, of which 60 s were four visibility timeouts, 3.8 s the job's own).
    came_back = redeliveries(stack)
    visibility = stack.settings.visibility_timeout_seconds
    slow = [
        (round(sub.latency, 1), came_back[sub.job_id])
        for sub in subs
        if sub.latency - visibility * came_back[sub.job_id] > PROMPT_SECONDS / 2
    ]
    assert not slow, (
        f"jobs held up more than {PROMPT_SECONDS / 2} s beyond their redeliveries (latency, redeliveries): {slow}"
    )
