"""A soak (a benchmark, not a test): steady load at a small fault rate, memory and descriptors watched.

    make soak                          # SOAK_MINUTES=20, SOAK_FAULT_RATE=0.02, SOAK_JOBS_PER_SECOND=0.5
    SOAK_MINUTES=5 nice make soak

The local stack's processes (the emulator, one worker with two pool processes, the API under
gunicorn with two workers) run behind the fault proxy of tests/faults/proxy.py, every AWS
request of the worker and the API through it. Clients submit jobs at a steady rate under
Idempotency-Keys and wait for each. Every minute it prints, per process, its resident memory
(RSS) and open file descriptors, and the jobs done that minute with their latency p50/p99; at
the end, each process's change from the first minute after warm-up to the last.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
for path in (ROOT, ROOT / "scripts"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from tests.faults.conftest import faulted_stack, start_emulator_behind_proxy  # noqa: E402 - after sys.path gains the root and scripts/
from tests.faults.load import REQUESTS, Answers, Client, Submission, check_outcome, direct_services  # noqa: E402 - after sys.path gains the root and scripts/
from tests.faults.proxy import SERVICES  # noqa: E402 - after sys.path gains the root and scripts/

WARM_UP_MINUTES = 2


def processes(leaders: dict[str, int]) -> dict[str, list[int]]:
    """Each stack process's pids: the one started, and its children (its session: started with one of its own)."""
    by_session: dict[int, list[int]] = defaultdict(list)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        by_session[int(fields[3])].append(int(entry))  # field 6: the session id
    return {name: sorted(by_session.get(pid, [pid])) for name, pid in leaders.items()}


def rss_and_fds(pid: int) -> tuple[int, int]:
    """(RSS in KiB, open descriptors) of one process; (0, 0) if it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        rss = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
        return rss, len(os.listdir(f"/proc/{pid}/fd"))
    except (OSError, StopIteration):
        return 0, 0


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))] if ordered else float("nan")


def main() -> int:
    minutes = float(os.environ.get("SOAK_MINUTES", "20"))
    rate = float(os.environ.get("SOAK_FAULT_RATE", "0.02"))
    per_second = float(os.environ.get("SOAK_JOBS_PER_SECOND", "0.5"))
    services = tuple(os.environ.get("SOAK_SERVICES", ",".join(SERVICES)).split(","))
    os.environ.update({"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"})
    logs = Path(tempfile.mkdtemp(prefix="ghost-engine-soak-"))
    emulator, proxy = start_emulator_behind_proxy(logs / "emulator")
    stack = faulted_stack(proxy, logs)
    stack.start_worker("worker", concurrency=2)
    stack.start_api()
    print(
        f"soak: {minutes:g} min, {per_second:g} jobs/s, {rate:.0%} faults on {', '.join(services)}; logs in {logs}",
        flush=True,
    )
    proxy.set_faults(rate, services=services)
    answers, done_lock = Answers(), threading.Lock()
    finished: list[tuple[float, float]] = []  # (when done, latency)
    subs = []
    started = time.monotonic()
    end = started + minutes * 60
    first_after_warm_up: dict[str, tuple[int, int]] = {}
    last: dict[str, tuple[int, int]] = {}

    def one(sub) -> None:
        # Clients look once a second: a soak measures the stack, not a storm of /status reads.
        Client(stack.api_url, answers, seed=len(subs), poll=1.0).run(sub, deadline=end + 120)
        if sub.done:
            with done_lock:
                finished.append((sub.done, sub.latency))

    pool = ThreadPoolExecutor(64)
    leaders = {name: proc.pid for name, proc in {**stack.procs, "emulator": emulator.procs["emulator"]}.items()}
    next_report, minute = started + 60, 0
    print(f"{'min':>3} {'process':<9} {'pids':>4} {'RSS MiB':>8} {'fds':>5}   jobs done  p50 s  p99 s", flush=True)
    try:
        while time.monotonic() < end:
            sub = Submission(key=f"soak-{uuid.uuid4().hex}", body=dict(REQUESTS[len(subs) % len(REQUESTS)]))
            subs.append(sub)
            pool.submit(one, sub)
            time.sleep(1 / per_second)
            if time.monotonic() >= next_report:
                minute += 1
                next_report += 60
                with done_lock:
                    window = [lat for when, lat in finished if next_report - 120 <= when < next_report - 60]
                p50 = statistics.median(window) if window else float("nan")
                jobs = f"{len(window):>9}  {p50:5.2f}  {percentile(window, 0.99):5.2f}"
                for name, pids in processes(leaders).items():
                    rss, fds = map(sum, zip(*(rss_and_fds(pid) for pid in pids), strict=True))
                    last[name] = (rss, fds)
                    if minute == WARM_UP_MINUTES + 1:
                        first_after_warm_up[name] = (rss, fds)
                    print(f"{minute:>3} {name:<9} {len(pids):>4} {rss / 1024:8.1f} {fds:>5}   {jobs}", flush=True)
                    jobs = ""
        pool.shutdown(wait=True)
    finally:
        proxy.clear()
        latencies = [lat for _, lat in finished]
        p50 = statistics.median(latencies) if latencies else float("nan")
        print(
            f"\njobs: {len(subs)} submitted, {len(finished)} ended; latency p50 {p50:.2f} s,"
            f" p99 {percentile(latencies, 0.99):.2f} s; API answers {dict(sorted(answers.codes.items()))};"
            f" answers a client must never see: {len(answers.bad)}\nfaults injected:\n{proxy.report()}",
            flush=True,
        )
        if first_after_warm_up:
            print(f"\nfrom minute {WARM_UP_MINUTES + 1} to minute {minute}:")
            for name, (rss, fds) in first_after_warm_up.items():
                rss_end, fds_end = last[name]
                print(
                    f"  {name:<9} RSS {rss / 1024:.1f} -> {rss_end / 1024:.1f} MiB ({(rss_end - rss) / 1024:+.1f}),"
                    f" fds {fds} -> {fds_end} ({fds_end - fds:+d})"
                )
        problems = check_outcome([s for s in subs if s.job_id], direct_services(stack.settings, emulator.emulator_url))
        print(f"\nchecked every job in the store: {len(problems)} problems {problems[:5]}", flush=True)
        stack.stop()
        emulator.stop()
        proxy.stop()
    return 0 if not problems and not answers.bad else 1


if __name__ == "__main__":
    sys.exit(main())
