"""make bench: what a job costs beside the bare Celery chain it rides on, on one emulator, in one run.

    python scripts/bench.py [--sequential 15] [--concurrent 100] [--json FILE]

Prints:
  (a) the median submit -> done latency of sequential default jobs beside a bare chain of as many
      no-op tasks as a job has steps, with the same broker settings (scripts/bench_chain.py), and
      their ratio; and beside the same chain on kombu's own SQS transport (a "stock chain"), as
      a Celery project on SQS runs without this project's transport;
  (b) the throughput of N concurrent jobs beside N concurrent bare chains, and stock chains;
  (c) the AWS requests a job makes, by service and operation, from the emulator's recorder, with
      Celery's events and remote control counted apart — unwatched, then with task events on (as
      when Flower watches);
  (d) the sequential round trips of each step on the critical path, from the recorder's
      timestamps (scripts/hot_path.py), with one job's timeline;
  (e) what a job costs at list prices, and (f) an estimate of a job's latency on AWS from its
      round trips and per-service latencies (ASSUMED_MS, written down in docs/performance.md);
  (g) the CPU a job and a bare chain cost each process (emulator, workers, API), and what the
      emulator's share means for (a): it serves requests on one interpreter, so a job cannot
      finish faster than the emulator's CPU for its requests.
The generator's own timings are `make bench-generator`. The chains' workers run at the same time
on the same emulator, with the same concurrency; jobs and chains take turns, so noise hits all.
Times come from the worker's log (job.done) and the chain's last task (a file), never from polling
the emulator, which would slow what is measured.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]

from hot_path import PRICES, critical_paths, describe, job_cost  # noqa: E402 - after sys.path gains the root and scripts/

from aws_requests import StackNames, categorise, recording  # noqa: E402 - after sys.path gains the root and scripts/
from local_stack import Stack, StackConfig  # noqa: E402 - after sys.path gains the root and scripts/
from storage.provision import provision  # noqa: E402 - after sys.path gains the root and scripts/

REQUEST = {"prompt": "a spooky hallway", "seed": 123, "style": "doom"}


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Bench:
    """The stack, a bare-chain worker beside it, and the clocks of both."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.marks = log_dir / "marks"
        self.marks.mkdir()
        self.stack = Stack(
            StackConfig(emulator_port=free_port(), api_port=free_port(), worker_concurrency=2),
            extra_env={"SWEEP_INTERVAL_SECONDS": "0"},  # no background queries in the counts
            log_dir=log_dir,
        )

    def start(self) -> None:
        self.stack.start_emulator()
        self.stack.start_worker("worker")
        self.stack.start_api()
        bare = {"QUEUE_NAME": "bench-bare", "DEAD_LETTER_QUEUE_NAME": "bench-bare-dlq"}
        settings_env = {**self.stack.env, **bare}
        urls = _provisioned(settings_env)
        self.bare_env = {
            **bare,
            "SQS_QUEUE_URL": urls["queue"],
            "BENCH_MARK_DIR": str(self.marks),
            "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'scripts'}",
        }
        self.stack.start_worker("bare", app="bench_chain", env=self.bare_env)
        # The same chain on kombu's own SQS transport (scripts/bench_chain.py), on a queue of its own.
        stock = {"QUEUE_NAME": "bench-stock", "DEAD_LETTER_QUEUE_NAME": "bench-stock-dlq"}
        self.stock_marks = self.log_dir / "marks-stock"
        self.stock_marks.mkdir()
        stock_env = {
            **self.bare_env,
            **stock,
            "SQS_QUEUE_URL": _provisioned({**self.stack.env, **stock})["queue"],
            "BENCH_MARK_DIR": str(self.stock_marks),
            "BENCH_CHAIN_TRANSPORT": "stock",
        }
        self.stack.start_worker("stock", app="bench_chain", env=stock_env)
        # This process sends the bare chains: celeryconfig reads the bare queue from the environment.
        os.environ.update({**self.stack.env, **self.bare_env})
        import bench_chain

        self.send_chain = bench_chain.send
        stock_app = bench_chain.make_app("stock", queue=stock["QUEUE_NAME"])
        self.send_stock_chain = lambda chain_id: bench_chain.send(chain_id, stock_app)

    def stop(self) -> None:
        self.stack.stop()

    # --- one job, one chain ------------------------------------------------------------

    def submit_job(self) -> tuple[str, float]:
        started = time.time()
        response = requests.post(f"{self.stack.api_url}/generate-scene", json=REQUEST, timeout=30)
        response.raise_for_status()
        return response.json()["jobId"], started

    def submit_chain(self) -> tuple[str, float]:
        chain_id, started = uuid.uuid4().hex, time.time()
        self.send_chain(chain_id)
        return chain_id, started

    def submit_stock_chain(self) -> tuple[str, float]:
        chain_id, started = uuid.uuid4().hex, time.time()
        self.send_stock_chain(chain_id)
        return chain_id, started

    def jobs_done(self) -> dict[str, float]:
        """jobId -> when the worker logged it done (epoch seconds)."""
        done = {}
        for line in (self.log_dir / "worker.log").read_text(errors="replace").splitlines():
            if '"job.done"' in line and line.startswith("{"):
                event = json.loads(line)
                done[event["jobId"]] = datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00")).timestamp()
        return done

    def chains_done(self, marks: Path | None = None) -> dict[str, float]:
        marks = marks or self.marks
        return {path.name: float(path.read_text()) for path in marks.iterdir() if path.stat().st_size}

    def stock_chains_done(self) -> dict[str, float]:
        return self.chains_done(self.stock_marks)

    def wait(self, ids: set[str], finished, timeout: float = 600) -> dict[str, float]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done = finished()
            if ids <= done.keys():
                return {key: done[key] for key in ids}
            time.sleep(0.02)
        raise RuntimeError(f"{len(ids - finished().keys())} of {len(ids)} not done in {timeout} s")


def _provisioned(env: dict[str, str]) -> dict[str, str]:
    from storage.settings import Settings

    saved = dict(os.environ)
    os.environ.update(env)
    try:
        return provision(Settings.from_env(env))
    finally:
        os.environ.clear()
        os.environ.update(saved)


def latency(bench: Bench, runs: int) -> dict:
    """(a) Sequential: jobs, bare chains and stock chains take turns; medians of submit -> done, in ms."""
    kinds = {
        "job": (bench.submit_job, bench.jobs_done),
        "chain": (bench.submit_chain, bench.chains_done),
        "stockChain": (bench.submit_stock_chain, bench.stock_chains_done),
    }
    times: dict[str, list[float]] = {kind: [] for kind in kinds}
    for _ in range(runs + 1):  # the first of each warms caches and connections
        for kind, (submit, finished) in kinds.items():
            item_id, started = submit()
            times[kind].append(bench.wait({item_id}, finished)[item_id] - started)
    median = {kind: statistics.median(samples[1:]) * 1000 for kind, samples in times.items()}
    return {
        "runs": runs,
        "jobMedianMs": round(median["job"]),
        "chainMedianMs": round(median["chain"]),
        "ratio": round(median["job"] / median["chain"], 2),
        "jobP95Ms": round(p95(times["job"][1:]) * 1000),
        "chainP95Ms": round(p95(times["chain"][1:]) * 1000),
        "stockChainMedianMs": round(median["stockChain"]),
        "stockChainP95Ms": round(p95(times["stockChain"][1:]) * 1000),
        "stockRatio": round(median["job"] / median["stockChain"], 2),
    }


def p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20, method="inclusive")[18]


def throughput(bench: Bench, count: int) -> dict:
    """(b) ``count`` at once, each kind in turn: completions per second, first submit to last done."""

    def run(submit, finished) -> float:
        started = time.time()
        with ThreadPoolExecutor(max_workers=20) as pool:
            ids = {item_id for item_id, _ in pool.map(lambda _: submit(), range(count))}
        ended = max(bench.wait(ids, finished).values())
        return count / (ended - started)

    jobs = run(bench.submit_job, bench.jobs_done)
    chains = run(bench.submit_chain, bench.chains_done)
    stock = run(bench.submit_stock_chain, bench.stock_chains_done)
    return {
        "count": count,
        "jobsPerSecond": round(jobs, 2),
        "chainsPerSecond": round(chains, 2),
        "ratio": round(jobs / chains, 2),
        "stockChainsPerSecond": round(stock, 2),
        "stockRatio": round(jobs / stock, 2),
    }


def requests_per_job(bench: Bench, jobs: int = 5) -> dict:
    """(c), (d), (e): the emulator's recording of ``jobs`` sequential jobs: requests per job by
    category, each step's critical path, and the job path's bill."""
    import pipeline

    settings = bench.stack.settings
    names = StackNames(
        settings.jobs_table_name,
        settings.artifacts_bucket or "",
        bench.stack.env["SQS_QUEUE_URL"],
        settings.control_prefix,
    )

    def measure() -> tuple[dict, list, list[str]]:
        done = []
        with recording(bench.stack.emulator_url) as served:
            for _ in range(jobs):
                job_id, _ = bench.submit_job()
                bench.wait({job_id}, bench.jobs_done)
                done.append(job_id)
            time.sleep(1)  # the last step's delete and events land
        per: dict[str, Counter] = {}
        for (category, service, operation), n in categorise(served, names).items():
            per.setdefault(category, Counter())[f"{service} {operation}"] += n / jobs
        return {category: dict(sorted(counts.items())) for category, counts in per.items()}, served, done

    unwatched, served, done = measure()
    paths = critical_paths(served, names, pipeline.STEPS)
    steps = {
        pipeline.STEPS[index]: {
            "median": statistics.median(p[index].round_trips for p in paths),
            "max": max(p[index].round_trips for p in paths),
        }
        for index in range(len(pipeline.STEPS) - 1)
    }
    timeline = [describe(path, served) for path in paths[-1]]
    cost = job_cost(served, names, jobs, *_item_and_indexes(bench, settings.jobs_table_name, done[-1]))
    subprocess.run(
        [sys.executable, "-m", "celery", "-A", "tasks", "control", "enable_events"],
        env=bench.stack.env,
        cwd=ROOT,
        capture_output=True,
        timeout=60,
        check=True,
    )
    watched, _, _ = measure()
    return {
        "jobs": jobs,
        "unwatched": unwatched,
        "watched": watched,
        "criticalPath": {"perStep": steps, "timeline": timeline},
        "cost": cost,
        "computeMs": _compute_ms(bench, set(done), last=pipeline.STEPS[-1]),
    }


def _item_and_indexes(bench: Bench, table: str, job_id: str) -> tuple[dict, list[dict]]:
    """The finished job's item (low-level form) and the table's global secondary indexes."""
    import boto3

    env = bench.stack.env
    client = boto3.client(
        "dynamodb",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        region_name=bench.stack.settings.region,
        aws_access_key_id="test",
        aws_secret_access_key="test",  # noqa: S106 - the emulator's dummy credentials
    )
    item = client.get_item(TableName=table, Key={"jobId": {"S": job_id}})["Item"]
    return item, client.describe_table(TableName=table)["Table"].get("GlobalSecondaryIndexes", [])


def _compute_ms(bench: Bench, jobs: set[str], last: str) -> dict[str, float]:
    """Median compute of each step of ``jobs``, from the worker's log: its computation (after its
    claim if it makes one), and for the last step the making of its artifacts too, up to the
    moment result.json can go; not their uploads, which (f) counts as a round trip of its own."""
    durations: dict[str, list[int]] = {}
    made: dict[str, int] = {}
    for line in (bench.log_dir / "worker.log").read_text(errors="replace").splitlines():
        if not line.startswith("{") or not ('"step.recorded"' in line or '"artifacts.written"' in line):
            continue
        event = json.loads(line)
        if event.get("jobId") not in jobs:
            continue
        if event["event"] == "artifacts.written":
            made[event["jobId"]] = event["madeMs"]
        else:
            computed = event["computeMs"] + (made.pop(event["jobId"], 0) if event["step"] == last else 0)
            durations.setdefault(event["step"], []).append(computed)
    return {step: statistics.median(values) for step, values in durations.items()}


IDLE_SECONDS = 3  # how long (g) watches the stack idle, to learn what its polling costs


def cpu_seconds(groups: dict[str, int], proc: Path = Path("/proc")) -> dict[str, float]:
    """CPU time (user + system, seconds) of each named process group: its leader and every
    process in the group (a worker's pool, gunicorn's workers), from ``proc``/<pid>/stat."""
    ticks = os.sysconf("SC_CLK_TCK")
    names = {pgid: name for name, pgid in groups.items()}
    totals = dict.fromkeys(groups, 0.0)
    for stat in proc.glob("[0-9]*/stat"):
        try:
            # After "pid (command)": state, ppid, pgrp, ... utime and stime at 11 and 12. The
            # command may hold spaces and parentheses, hence the last ")".
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # it ended meanwhile
        name = names.get(int(fields[2]))
        if name is not None:
            totals[name] += (int(fields[11]) + int(fields[12])) / ticks
    return totals


def per_item_ms(spent: dict[str, float], idle_per_second: dict[str, float], seconds: float, items: int) -> dict:
    """CPU ms per item from a block of ``items`` that took ``seconds``: what each group spent,
    less what it spends idle (long polls, heartbeats) over as long."""
    return {
        name: round(max(0.0, used - idle_per_second[name] * seconds) / items * 1000) for name, used in spent.items()
    }


def cpu_per_item(bench: Bench, runs: int) -> dict:
    """(g) CPU per job and per bare chain, by process: ``runs`` sequential jobs, then as many
    chains, with the stack's idle cost (measured first, over IDLE_SECONDS) taken out."""
    groups = {name: bench.stack.procs[name].pid for name in ("emulator", "worker", "bare", "api")}

    def spent(since: dict[str, float]) -> dict[str, float]:
        now = cpu_seconds(groups)
        return {name: now[name] - since[name] for name in groups}

    idle_since = cpu_seconds(groups)
    time.sleep(IDLE_SECONDS)
    idle = {name: used / IDLE_SECONDS for name, used in spent(idle_since).items()}

    def block(submit, finished) -> dict:
        before, started = cpu_seconds(groups), time.monotonic()
        for _ in range(runs):
            item_id, _ = submit()
            bench.wait({item_id}, finished)
        return per_item_ms(spent(before), idle, time.monotonic() - started, runs)

    return {
        "runs": runs,
        "idleMsPerSecond": {name: round(rate * 1000) for name, rate in idle.items()},
        "job": block(bench.submit_job, bench.jobs_done),
        "chain": block(bench.submit_chain, bench.chains_done),
    }


# Per-request latencies assumed for the AWS estimate (ms, same region, p50); where each comes
# from is in docs/performance.md.
ASSUMED_MS = {"dynamodb write": 5, "sqs send": 10, "sqs delivery": 10, "sqs delete": 10, "s3 put": 30, "s3 get": 20}


def aws_estimate(compute_ms: dict[str, float], steps: list[str]) -> dict:
    """A job's submit -> done latency on AWS: its sequential round trips at ASSUMED_MS, plus compute.

    A step's hop: the delivery, the record and the send — no claim: the record of a step hands the
    next one its lease, and the API's put the first step's; no upload: the record keeps a default
    level's checkpoint in the job's item (a bigger one's upload would go beside it); the delete of
    the step before's message is made beside the consumer's loop (tasks/sqs_acks.py). Before
    issue 17 every step claimed, the checkpoint's read and its upload were in line with the
    record, and the consumer made that delete in its loop, mostly before it handed the next
    message on (docs/performance.md).
    """
    a = ASSUMED_MS
    write, put, get = a["dynamodb write"], a["s3 put"], a["s3 get"]
    hop = a["sqs delivery"] + a["sqs send"]  # receive, send
    now = before = write + a["sqs send"]  # the API's put and first send
    for index in range(len(steps) - 1):
        reads, writes = index >= 2, index >= 1  # parse_prompt has no checkpoint; layout_rooms reads none
        now += hop + write
        before += hop + write + a["sqs delete"] + write + (get if reads else 0) + (put if writes else 0)
    last = a["sqs delivery"] + put + write  # the uploads side by side, the record
    compute = sum(compute_ms.get(step, 0) for step in steps)
    return {
        "assumedMs": a,
        "computeMs": round(compute),
        "jobMs": round(now + last + compute),
        "beforeMs": round(before + last + compute),
    }


def report(results: dict) -> None:
    a, b, c = results["latency"], results["throughput"], results["requests"]
    print("\n(a) latency, sequential, submit -> done")
    print(
        f"    job {a['jobMedianMs']} ms (p95 {a['jobP95Ms']})   bare chain {a['chainMedianMs']} ms "
        f"(p95 {a['chainP95Ms']})   ratio {a['ratio']}x  (medians of {a['runs']} each)"
    )
    print(
        f"    stock chain (kombu's own SQS transport) {a['stockChainMedianMs']} ms (p95 {a['stockChainP95Ms']})"
        f"   job : stock chain {a['stockRatio']}x"
    )
    print(f"\n(b) throughput, {b['count']} at once")
    print(f"    jobs {b['jobsPerSecond']}/s   bare chains {b['chainsPerSecond']}/s   ratio {b['ratio']}x")
    print(f"    stock chains {b['stockChainsPerSecond']}/s   job : stock chain {b['stockRatio']}x")
    print(f"\n(c) AWS requests per job ({c['jobs']} sequential jobs, the emulator's recorder)")
    for label in ("unwatched", "watched"):
        print(f"    {label}:")
        for category, counts in c[label].items():
            total = sum(counts.values())
            detail = ", ".join(f"{op} {n:g}" for op, n in counts.items())
            print(f"      {category:<10} {total:6.2f}   {detail}")
    path = c["criticalPath"]
    print("\n(d) sequential round trips per step on the critical path (receive to next receive; median, max)")
    print("    " + "   ".join(f"{step} {n['median']:g}/{n['max']}" for step, n in path["perStep"].items()))
    print("    the last job, ms after each delivery:")
    for line in path["timeline"]:
        print(f"      {line}")
    cost = c["cost"]
    entries = ", ".join(f"{name} {size}" for name, size in cost["indexes"].items())
    print(
        f"\n(e) cost per job at list prices (DynamoDB writes billed on a {cost['itemBytes']}-byte item;"
        f" index entries, bytes: {entries or 'none'})"
    )
    for name, units in cost["units"].items():
        print(f"    {name:<37} {units:6.2f} x ${PRICES[name] * 1e6:.2f}/M = ${units * PRICES[name] * 1e6:.2f}/M jobs")
    print(f"    total ${cost['usdPerMillionJobs']:.2f} per million jobs")
    e = results["estimate"]
    print(
        f"\n(f) estimated latency on AWS: {e['jobMs']} ms (before this path: {e['beforeMs']} ms), of which "
        f"compute {e['computeMs']} ms; assumed ms per request: {e['assumedMs']}"
    )
    g = results["cpu"]
    print(f"\n(g) CPU per item, ms, by process ({g['runs']} sequential each, from /proc; idle polling taken out)")
    print(f"    {'':<11}" + "".join(f"{name:>10}" for name in (*g["job"], "total")))
    for label, key in (("job", "job"), ("bare chain", "chain")):
        row = g[key]
        print(f"    {label:<11}" + "".join(f"{ms:>10}" for ms in (*row.values(), sum(row.values()))))
    emulator, chain = g["job"]["emulator"], a["chainMedianMs"]
    print(
        f"    the emulator is one Python process, whose threads run one at a time under the interpreter's lock,"
        f" so a job takes about its {emulator} ms there at least: {emulator / chain:.2f}x the bare chain's"
        f" median latency (a). CPU, job : chain = {sum(g['job'].values()) / max(1, sum(g['chain'].values())):.2f}x"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequential", type=int, default=15)
    parser.add_argument("--concurrent", type=int, default=100)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ghost-bench-") as tmp:
        bench = Bench(Path(tmp))
        try:
            bench.start()
            results = {
                "latency": latency(bench, args.sequential),
                "throughput": throughput(bench, args.concurrent),
                "cpu": cpu_per_item(bench, args.sequential),
                "requests": requests_per_job(bench),
            }
            import pipeline

            results["estimate"] = aws_estimate(results["requests"]["computeMs"], list(pipeline.STEPS))
        finally:
            bench.stop()
    report(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
