"""The local stack: AWS emulator, provisioned resources, Celery worker, API, Flower — one command.

    python scripts/local_stack.py           (what `make run` runs)
    python scripts/local_stack.py --clean   (`make run-clean`: forget the saved state first)

Everything binds to 127.0.0.1. Ctrl-C (SIGINT) or SIGTERM stops every process
it started, API first and the emulator last, and leaves no port bound. The
emulator saves its state when it stops and loads it when `make run` starts it
again (scripts/emulator_state.py), so jobs, steps and artifacts stay. The
same class starts the pieces for the integration tests (without saved state).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script, the project root is not on the path
    sys.path.insert(0, str(ROOT))

from storage.bootstrap import aws_client  # noqa: E402 - after sys.path gains the project root
from storage.dynamo_items import LIST_INDEX  # noqa: E402 - after sys.path gains the project root
from storage.errors import ConfigError  # noqa: E402 - after sys.path gains the project root
from storage.provision import provision  # noqa: E402 - after sys.path gains the project root
from storage.settings import EnvReader, Settings  # noqa: E402 - after sys.path gains the project root
from tasks import liveness  # noqa: E402 - after sys.path gains the project root

HOST = "127.0.0.1"
# How `make test COVERAGE=1` reaches the processes the tests start (coverage's subprocess patch):
# a child whose environment lacks them runs without the tracer.
COVERAGE_VARIABLES = ("COVERAGE_PROCESS_START", "COVERAGE_PROCESS_CONFIG")
# How long a new worker has to write its first heartbeat before the stack replaces it: the
# `startPeriod` of the worker's ECS health check (deploy/terraform/ecs.tf). A worker starting on a
# loaded machine can take longer than WORKER_LIVENESS_SECONDS to beat once; a heartbeat it has
# written goes stale after WORKER_LIVENESS_SECONDS, as on ECS.
WORKER_START_PERIOD_SECONDS = 60
# A worker that exits sooner than this after its start is taken to be unable to run (a bad setting,
# a broken import): the stack stops, saying so, rather than restart it again and again. One that
# exits later (killed, or shut down from Flower) is restarted, as ECS replaces a stopped task.
WORKER_MIN_RUN_SECONDS = 30


def untraced(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` without coverage's variables: a child started with it runs at full speed."""
    return {key: value for key, value in env.items() if key not in COVERAGE_VARIABLES}


# Settings of the stack's own that an operator's commands must share, when set (README, "Settings").
_PASSED_ON = (
    "JOBS_TABLE_NAME",
    "ARTIFACTS_BUCKET",
    "QUEUE_NAME",
    "DEAD_LETTER_QUEUE_NAME",
    "CONTROL_PREFIX",
    "EVENTS_TOPIC_ARN",
    "CONTROL_TOPIC_ARN",
)


@dataclass
class StackConfig:
    """The stack's ports and sizes; every one overridable from the environment."""

    emulator_port: int = 4566
    api_port: int = 8000
    flower_port: int = 5555
    api_workers: int = 2
    worker_concurrency: int = 2
    state_dir: Path = ROOT / ".local-stack"  # the emulator's log and saved state, heartbeats

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> StackConfig:
        """Read and check every one; raise ConfigError naming a bad one."""
        environ = os.environ if environ is None else environ
        read = EnvReader(environ)
        state_dir = read("LOCAL_STACK_DIR", str, ".local-stack")
        if (ROOT / state_dir).resolve() == ROOT:
            # The emulator's log, its saved state and the heartbeats would land among the sources.
            raise ConfigError(
                f"LOCAL_STACK_DIR must name a directory of its own, not the checkout: got {state_dir!r}",
                details={"setting": "LOCAL_STACK_DIR"},
            )
        config = cls(
            emulator_port=read("EMULATOR_PORT", int, cls.emulator_port, low=1, high=65535),
            api_port=read("API_PORT", int, cls.api_port, low=1, high=65535),
            flower_port=read("FLOWER_PORT", int, cls.flower_port, low=1, high=65535),
            api_workers=read("API_WORKERS", int, cls.api_workers, low=1, high=64),
            worker_concurrency=read("WORKER_CONCURRENCY", int, cls.worker_concurrency, low=1, high=64),
            state_dir=ROOT / state_dir,
        )
        auth = environ.get("FLOWER_BASIC_AUTH")
        if auth and not all(re.fullmatch(r"[^:]+:.+", pair) for pair in auth.split(",")):
            raise ConfigError(
                "FLOWER_BASIC_AUTH is user:password (or several, comma-separated)",
                details={"setting": "FLOWER_BASIC_AUTH"},
            )
        taken: dict[int, str] = {}
        for var, port in (
            ("EMULATOR_PORT", config.emulator_port),
            ("API_PORT", config.api_port),
            ("FLOWER_PORT", config.flower_port),
        ):
            if port in taken:
                raise ConfigError(f"{var} must differ from {taken[port]}, both {port}", details={"setting": var})
            taken[port] = var
        return config

    @property
    def state_file(self) -> Path:
        """Where the emulator saves its state at stop and loads it from at start."""
        return self.state_dir / "emulator-state.pickle"

    @property
    def credentials_file(self) -> Path:
        """Where `make run` keeps the credentials it generated (kept_credentials)."""
        return self.state_dir / "credentials.json"


# The settings `make run` generates when they are not set, and how.
GENERATED = {
    "INTERNAL_TOKEN": lambda: secrets.token_urlsafe(24),
    "FLOWER_BASIC_AUTH": lambda: f"ops:{secrets.token_urlsafe(18)}",
}


def kept_credentials(config: StackConfig, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The operators' token and Flower's user:password that `make run` generated before, for those
    not set in ``environ``: a restart keeps them, as it keeps the jobs, so an operator's terminal
    (its `export` lines) and a console tab that has the token go on working. Generated and written
    (owner-only) the first time; `make run-clean` keeps them, `make clean` forgets them.
    """
    environ = os.environ if environ is None else environ
    wanted = [name for name in GENERATED if not environ.get(name)]
    if not wanted:
        return {}
    try:
        saved = json.loads(config.credentials_file.read_text())
    except (OSError, ValueError):
        saved = {}  # none yet, or unreadable: new ones
    if not isinstance(saved, dict):
        saved = {}
    kept = {
        name: value if isinstance(value := saved.get(name), str) and value else make()
        for name, make in GENERATED.items()
    }
    if kept != saved:
        # A directory that cannot be written keeps nothing: this run's are good all the same.
        with contextlib.suppress(OSError):
            config.state_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(config.credentials_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as out:
                json.dump(kept, out)
            config.credentials_file.chmod(0o600)  # a file left by an earlier, looser umask
    return {name: kept[name] for name in wanted}


def port_free(port: int) -> bool:
    """True when nothing listens on 127.0.0.1:port."""
    with socket.socket() as sock:
        return sock.connect_ex((HOST, port)) != 0


def stop_process_group(proc: subprocess.Popen | None, sig: int = signal.SIGTERM, timeout: float = 15) -> None:
    """Signal a process started in its own session and its children; SIGKILL them after ``timeout``."""
    if proc is None:
        return
    if proc.poll() is not None:
        # The process is gone, not necessarily what it started (a Celery worker killed with
        # SIGKILL can leave its steps' subprocesses running): they go with it.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        return
    try:
        os.killpg(proc.pid, sig)
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)
    except ProcessLookupError:
        pass


def exit_status(returncode: int) -> str:
    """How a process ended, for a person: "code 1", "signal 9, SIGKILL"."""
    if returncode >= 0:
        return f"code {returncode}"
    try:
        return f"signal {-returncode}, {signal.Signals(-returncode).name}"
    except ValueError:
        return f"signal {-returncode}"


def wait_http(url: str, timeout: float, proc: subprocess.Popen | None = None) -> None:
    """Wait until ``url`` answers any HTTP status; fail early if ``proc`` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{proc.args[2:4]} exited with {proc.returncode} while starting")
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


@dataclass(frozen=True)
class WorkerSpec:
    """How a worker was started, to start it again the same way."""

    concurrency: int
    app: str
    env: dict[str, str]
    started_at: float  # time.monotonic() at its start

    def running_for(self) -> float:
        """Seconds since its start."""
        return time.monotonic() - self.started_at


@dataclass
class Stack:
    """Starts and stops the local stack's processes."""

    config: StackConfig = field(default_factory=StackConfig)
    extra_env: dict[str, str] = field(default_factory=dict)
    log_dir: Path | None = None  # None: children write to this terminal
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    workers: dict[str, WorkerSpec] = field(default_factory=dict)  # how each worker was started
    keep_state: bool = False  # the emulator loads config.state_file at start and saves it at stop
    jobs_at_start: int = 0  # jobs in the table once provisioned: those of earlier runs, when kept
    # Under `make test COVERAGE=1`, whether the worker, API and Flower run under the tracer. A test
    # that measures load, not lines, turns it off: the tracer triples the generator's cost.
    measured: bool = True

    def __post_init__(self) -> None:
        endpoint = f"http://{HOST}:{self.config.emulator_port}"
        # As the services resolve it (storage/settings.py): AWS_REGION, else AWS_DEFAULT_REGION.
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        self.env = {
            **os.environ,
            "ENV": "local",
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "AWS_ENDPOINT_URL": endpoint,
            # Flower reads its basic auth from its environment (as on ECS), which keeps it out of `ps`.
            **{name: os.environ.get(name) or make() for name, make in GENERATED.items()},
            "PYTHONPATH": str(ROOT),
            "PYTHONUNBUFFERED": "1",
            **self.extra_env,
        }
        if "BROKER_URL" not in self.extra_env:
            # The broker URL is built from the emulator endpoint, never taken from the shell.
            self.env.pop("BROKER_URL", None)

    @property
    def settings(self) -> Settings:
        return Settings.from_env(self.env)

    @property
    def api_url(self) -> str:
        return f"http://{HOST}:{self.config.api_port}"

    @property
    def flower_url(self) -> str:
        return f"http://{HOST}:{self.config.flower_port}"

    @property
    def emulator_url(self) -> str:
        return self.env["AWS_ENDPOINT_URL"]

    # --- pieces ----------------------------------------------------------------

    def start_emulator(self) -> None:
        """moto in server mode (scripts/emulator.py), then the table, bucket and queues inside it."""
        self._require_free(self.config.emulator_port, "EMULATOR_PORT")
        log_dir = self.log_dir or self.config.state_dir
        state = ["--state-file", str(self.config.state_file)] if self.keep_state else []
        proc = self._spawn(
            "emulator",
            [
                sys.executable,
                str(ROOT / "scripts" / "emulator.py"),
                "--host",
                HOST,
                "--port",
                str(self.config.emulator_port),
                *state,
            ],
            # The emulator's request log is noise next to the services' JSON lines.
            log_dir=log_dir,
            # Where moto's request recorder writes, when started (scripts/aws_requests.py).
            env={"MOTO_RECORDER_FILEPATH": str(log_dir / "emulator-recording.jsonl")},
            # moto holds none of ghost-engine's code: under coverage, the tracer would only slow
            # down what every integration test waits on.
            measured=False,
        )
        wait_http(f"{self.emulator_url}/moto-api/", 30, proc)
        self.provision()

    def provision(self) -> None:
        """Create the resources (idempotent) and point producers at the queue's URL."""
        # boto3 takes credentials from the process environment; lend it the stack's.
        keys = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
        saved = {key: os.environ.get(key) for key in keys}
        os.environ.update({key: self.env[key] for key in keys})
        try:
            urls = provision(self.settings)
            self.jobs_at_start = aws_client(self.settings, "dynamodb").scan(
                TableName=self.settings.jobs_table_name, Select="COUNT", IndexName=LIST_INDEX
            )["Count"]
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        self.env["SQS_QUEUE_URL"] = urls["queue"]
        self.env["DEAD_LETTER_QUEUE_URL"] = urls["deadLetterQueue"]

    def start_worker(
        self, name: str = "worker", concurrency: int | None = None, *, app: str = "tasks", env: dict | None = None
    ) -> subprocess.Popen:
        """A Celery worker consuming the job queue over the SQS transport.

        With heartbeats (events over SNS), so Flower sees the worker online; without mingle
        and gossip, which only slow start-up and shutdown. Its liveness heartbeat file is its
        own (tasks/liveness.py), watched by replace_unresponsive_workers.
        """
        concurrency = concurrency or self.config.worker_concurrency
        self.workers[name] = WorkerSpec(concurrency, app, dict(env or {}), time.monotonic())
        heartbeat = self.heartbeat_file(name)
        heartbeat.parent.mkdir(parents=True, exist_ok=True)
        heartbeat.unlink(missing_ok=True)
        return self._spawn(
            name,
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                app,
                "worker",
                "--loglevel",
                "INFO",
                "--concurrency",
                str(concurrency),
                "--hostname",
                f"{name}@%h",
                "--without-mingle",
                "--without-gossip",
            ],
            env={**(env or {}), "WORKER_HEARTBEAT_FILE": str(heartbeat)},
        )

    def heartbeat_file(self, name: str) -> Path:
        """Where worker ``name`` keeps its liveness heartbeat."""
        return (self.log_dir or self.config.state_dir) / f"{name}.alive"

    def replace_unresponsive_workers(self) -> list[str]:
        """Restart every worker whose heartbeat went stale, as ECS's health check would; their names.

        A worker that has not beaten yet gets the longer of the liveness limit and
        WORKER_START_PERIOD_SECONDS from its start to do so.
        """
        limit = self.settings.worker_liveness_seconds
        replaced = []
        for name, spec in list(self.workers.items()):
            if name not in self.procs:
                continue
            running_for = spec.running_for()
            age = liveness.age(str(self.heartbeat_file(name)))
            if age is None:
                grace = max(limit, WORKER_START_PERIOD_SECONDS)
                if running_for < grace:
                    continue
                why = f"no heartbeat {grace} s after its start"
            elif age > limit and running_for >= limit:
                why = f"heartbeat {age:.0f} s old, limit {limit} s"
            else:
                continue
            self._restart_worker(name, f"stopped taking messages ({why})")
            replaced.append(name)
        return replaced

    def replace_exited_workers(self) -> list[str]:
        """Restart every worker that exited, as ECS replaces a stopped task; their names.

        One that exited within WORKER_MIN_RUN_SECONDS of its start is left for exited() to
        report (see why_exited): it cannot run, and restarting it would only loop.
        """
        replaced = []
        for name, proc in list(self.procs.items()):
            spec = self.workers.get(name)
            if spec is None or proc.poll() is None or spec.running_for() < WORKER_MIN_RUN_SECONDS:
                continue
            self._restart_worker(name, f"exited ({exit_status(proc.returncode)})")
            replaced.append(name)
        return replaced

    def why_exited(self, name: str) -> str:
        """Why the exit of process ``name`` stops the stack, for the line that says so."""
        status = exit_status(self.procs[name].returncode)
        if name in self.workers:
            ran = self.workers[name].running_for()
            return f"{name} exited {ran:.0f} s after it started ({status}), too soon to restart it"
        return f"{name} exited unexpectedly ({status})"

    def _restart_worker(self, name: str, why: str) -> None:
        """Stop worker ``name``, or what is left of it, and start it again the way it was started."""
        print(f"{name} {why}: restarting it", file=sys.stderr, flush=True)
        spec = self.workers[name]
        self.stop_process(name, timeout=5)
        self.start_worker(name, spec.concurrency, app=spec.app, env=spec.env)

    def start_api(self) -> None:
        """The API under gunicorn."""
        self._require_free(self.config.api_port, "API_PORT")
        proc = self._spawn(
            "api",
            [
                sys.executable,
                "-m",
                "gunicorn",
                "-c",
                "python:api.gunicorn_conf",
                "--bind",
                f"{HOST}:{self.config.api_port}",
                "--workers",
                str(self.config.api_workers),
                "api:create_app()",
            ],
        )
        wait_http(f"{self.api_url}/healthz", 30, proc)

    def start_flower(self) -> None:
        """Flower on loopback behind basic auth (FLOWER_BASIC_AUTH), fed by the workers' events."""
        self._require_free(self.config.flower_port, "FLOWER_PORT")
        proc = self._spawn(
            "flower",
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "tasks",
                "flower",
                f"--address={HOST}",
                f"--port={self.config.flower_port}",
            ],
        )
        wait_http(f"{self.flower_url}/healthcheck", 30, proc)

    def start(self) -> None:
        """Everything, in dependency order."""
        self.start_emulator()
        self.start_worker()
        self.start_api()
        self.start_flower()

    # --- lifecycle -------------------------------------------------------------

    def stop_process(self, name: str, *, kill: bool = False, timeout: float = 15, warm: bool = False) -> None:
        """Stop one process and its children (SIGTERM, then SIGKILL after ``timeout``).

        ``warm``: a worker gets its SIGTERM alone first, as ECS sends it: Celery's warm shutdown
        lets the steps in progress finish and hand on to the next, where a SIGTERM to its pool's
        processes too would cut them short (their job would wait for the step's lease to lapse).
        A step still running after ``timeout`` (one may run for STEP_TIME_LIMIT_SECONDS) is killed
        with its worker; its message was not acknowledged, so it runs again at the next start.
        """
        proc = self.procs.pop(name, None)
        if warm and not kill and name in self.workers and proc is not None and proc.poll() is None:
            try:
                os.kill(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    print(
                        f"{name} still busy after {timeout:g} s: killed; its step runs again at the next start",
                        file=sys.stderr,
                        flush=True,
                    )
                    raise
                finally:  # done, or stuck past the timeout: nothing of its group may outlive it
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(5)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                pass
            return
        stop_process_group(proc, signal.SIGKILL if kill else signal.SIGTERM, timeout)

    def stop(self) -> None:
        """Stop everything: the API first, then Flower, then the workers together (each letting its
        steps finish, for 15 s at most), then the emulator last.

        Together, because a warm shutdown takes two or three seconds however idle the worker
        (billiard's pool processes linger a second on their way out): one after another, every
        worker added that much to the stop.
        """
        workers = [name for name in self.procs if name in self.workers]
        others = [name for name in self.procs if name not in self.workers and name != "emulator"]
        for name in sorted(others, key=lambda n: n != "api"):
            self.stop_process(name)
        if workers:
            with ThreadPoolExecutor(len(workers), thread_name_prefix="stop") as pool:
                list(pool.map(lambda name: self.stop_process(name, warm=True), workers))
        self.stop_process("emulator")

    def exited(self) -> list[str]:
        """Names of started processes that are no longer running."""
        return [name for name, proc in self.procs.items() if proc.poll() is not None]

    def operator_exports(self) -> list[str]:
        """The `export` lines a second terminal needs to run the operators' commands against this stack.

        celery -A tasks and ghost-engine-admin find the emulator by AWS_ENDPOINT_URL (else they
        would try 127.0.0.1:4566, whatever listens there); the ghost-engine CLI finds the API by
        GHOST_API_URL; the operators' endpoints want INTERNAL_TOKEN. Names the stack took from
        its environment (JOBS_TABLE_NAME, ...) are passed on too.
        """
        aws = {
            key: self.env[key]
            for key in ("AWS_ENDPOINT_URL", "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
        }
        names = {key: self.env[key] for key in _PASSED_ON if key in self.env}
        lines = [aws, {"INTERNAL_TOKEN": self.env["INTERNAL_TOKEN"]}, {"GHOST_API_URL": self.api_url}]
        if names:
            lines.append(names)
        return ["export " + " ".join(f"{key}={shlex.quote(value)}" for key, value in line.items()) for line in lines]

    def _spawn(
        self,
        name: str,
        argv: list[str],
        log_dir: Path | None = None,
        env: dict[str, str] | None = None,
        *,
        measured: bool | None = None,
    ) -> subprocess.Popen:
        child_env = {**self.env, **(env or {})}
        if not (self.measured if measured is None else measured):
            child_env = untraced(child_env)
        out = None
        log_dir = log_dir or self.log_dir
        if log_dir is not None:
            log_dir.mkdir(parents=True, exist_ok=True)
            out = open(log_dir / f"{name}.log", "ab")  # noqa: SIM115 - the child holds it
        # Own session per child: we stop each with its children (Celery's pool) explicitly.
        proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=child_env,
            stdout=out,
            stderr=subprocess.STDOUT if out else None,
            start_new_session=True,
        )
        self.procs[name] = proc
        return proc

    @staticmethod
    def _require_free(port: int, variable: str) -> None:
        if not port_free(port):
            raise RuntimeError(f"port {port} is in use; stop what holds it or set {variable}")


def banner(stack: Stack) -> str:
    """What `make run` prints once everything is up."""
    exports = "".join(f"  {line}\n" for line in stack.operator_exports())
    try:
        where = stack.config.state_dir.relative_to(ROOT)
    except ValueError:
        where = stack.config.state_dir
    return (
        "\nghost-engine local stack is up\n"
        f"  API           {stack.api_url}   (try: curl {stack.api_url}/healthz)\n"
        f"  Console       {stack.api_url}/console/\n"
        f"  OpenAPI       {stack.api_url}/openapi.json\n"
        f"  Flower        {stack.flower_url}   (user:password {stack.env['FLOWER_BASIC_AUTH']})\n"
        f"  AWS emulator  {stack.emulator_url}   (its log: {where}/emulator.log)\n"
        f"  State         {stack.jobs_at_start} jobs from earlier runs; kept in {where}/ when this stops"
        " (make run-clean starts empty)\n"
        f"{_drills_line(stack.settings)}"
        'Operators, in another terminal: run these lines first (README, "Operators"):\n'
        f"{exports}"
        "Ctrl-C stops everything.\n"
    )


def _drills_line(settings: Settings) -> str:
    """The banner's word that submissions may carry a fault drill (FAULT_DRILLS=1), if they may."""
    if not settings.fault_drills:
        return ""
    return (
        "  Fault drills  on: a submission's X-Fault-Drill: fail:<step> fails that step, slow:<step>"
        f" makes it sleep {settings.fault_drill_slow_seconds:g} s\n"
    )


def main(argv: list[str] | None = None) -> int:
    """Run the stack in the foreground until Ctrl-C or SIGTERM."""
    parser = argparse.ArgumentParser(description="The local stack (make run).")
    parser.add_argument(
        "--clean", action="store_true", help="Forget the state saved by earlier runs and start empty (make run-clean)."
    )
    args = parser.parse_args(argv)
    try:
        config = StackConfig.from_env()
        stack = Stack(config, keep_state=True, extra_env=kept_credentials(config))
        stack.settings  # noqa: B018 - the services' settings, checked before anything starts
    except ConfigError as exc:
        print(f"local stack not started: {exc.message}", file=sys.stderr)
        return 2
    if args.clean:
        stack.config.state_file.unlink(missing_ok=True)
    stopping = False

    def on_signal(signum, _frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        stack.start()
        print(banner(stack), flush=True)
        while not stopping:
            stack.replace_exited_workers()
            if dead := stack.exited():
                print(f"stopping: {'; '.join(stack.why_exited(name) for name in dead)}", file=sys.stderr)
                return 1
            stack.replace_unresponsive_workers()
            time.sleep(0.5)
        return 0
    except RuntimeError as exc:
        print(f"local stack failed to start: {exc}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        print("stopping the local stack...", file=sys.stderr, flush=True)
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
