"""A real worker rides out SQS answering badly, and stops without a traceback.

The worker's broker endpoint is a small loopback proxy in front of the emulator (kombu takes its
SQS endpoint from the broker URL): every request passes through, until the test tells the proxy
to answer SQS's requests itself for a while — 500s, throttling 400s, garbage, reset connections —
as SQS and the network do. The worker here is not watched by the liveness check (nothing replaces
it): it must keep running and polling on its own.
"""

from __future__ import annotations

import contextlib
import http.client
import itertools
import os
import signal
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.integration.conftest import free_port

pytestmark = pytest.mark.integration

FAULTS = ("500", "throttle", "garbage", "reset")
ALL = {"*"}


class SQSFaultProxy:
    """Forwards every request to the emulator, or answers the SQS operations in ``faulting`` badly.

    ``faulting`` is a set of operation names (``SendMessage``...), ``ALL`` or empty (no faults).
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.faulting: set[str] = set()
        self.injected: dict[str, int] = dict.fromkeys(FAULTS, 0)
        self._kinds = itertools.cycle(FAULTS)
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as pycurl and botocore use it

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                kind = proxy.fault_for(self.headers)
                if kind is None:
                    self.forward(body)
                elif kind == "reset":
                    # Close with RST: the client sees "connection reset by peer", no answer.
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.close_connection = True
                else:
                    self.answer(
                        *{
                            "500": (500, b'{"__type": "com.amazonaws.sqs#InternalError", "message": "fault"}'),
                            "throttle": (
                                400,
                                b'{"__type": "com.amazonaws.sqs#ThrottlingException", "message": "Rate exceeded"}',
                            ),
                            "garbage": (502, b"<html><body>502 Bad Gateway</body></html>\x00\xff"),
                        }[kind]
                    )

            do_GET = do_POST

            def forward(self, body: bytes) -> None:
                upstream = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port, timeout=60)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
                    upstream.request(self.command, self.path, body=body, headers=headers)
                    response = upstream.getresponse()
                    self.answer(response.status, response.read(), response.getheaders())
                finally:
                    upstream.close()

            def answer(self, status: int, body: bytes, headers=()) -> None:
                self.send_response(status)
                for name, value in headers:
                    if name.lower() not in {"content-length", "connection", "transfer-encoding", "date", "server"}:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.server.daemon_threads = True
        self.server.handle_error = lambda request, address: None  # a client that hung up mid-answer
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def fault_for(self, headers) -> str | None:
        service, _, operation = (headers.get("X-Amz-Target") or "").partition(".")
        if service != "AmazonSQS" or not (operation in self.faulting or self.faulting >= ALL):
            return None
        with self._lock:
            kind = next(self._kinds)
            self.injected[kind] += 1
            return kind

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def proxy(emulator):
    proxy = SQSFaultProxy(emulator.config.emulator_port)
    yield proxy
    proxy.stop()


def start_worker_behind(live, proxy: SQSFaultProxy, concurrency: int = 1):
    """One worker whose SQS (and SNS) requests go through the proxy; the API sends to the emulator directly."""
    broker = f"sqs://test:test@127.0.0.1:{proxy.port}"
    return live.stack.start_worker("worker1", concurrency=concurrency, env={"BROKER_URL": broker})


def stop_warm(live, worker) -> None:
    """SIGTERM to the worker's main process alone, as ECS and `make run` stop it; then wait for its exit."""
    live.stack.procs.pop("worker1")
    os.kill(worker.pid, signal.SIGTERM)
    try:
        assert worker.wait(60) == 0
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.pid, signal.SIGKILL)  # whatever it left behind


def worker_log(live) -> str:
    return "\n".join(live.log_lines("worker1"))


def test_the_worker_keeps_polling_through_sqs_faults_and_then_runs_a_job(make_stack, proxy):
    live = make_stack(worker=False)
    worker = start_worker_behind(live, proxy, concurrency=2)  # a slot stays free: the job queue is polled
    first = live.submit()
    assert live.wait_terminal(first["jobId"], timeout=60)["state"] == "done"  # up and consuming

    during = live.submit()  # the API's send is not faulted: its steps meet the faults
    proxy.faulting = ALL
    time.sleep(10)
    proxy.faulting = set()
    faults_ended = time.monotonic()
    assert live.wait_terminal(during["jobId"], timeout=60)["state"] == "done"
    after = live.submit()
    assert live.wait_terminal(after["jobId"], timeout=30)["state"] == "done"
    print(f"faults injected: {proxy.injected}; done {time.monotonic() - faults_ended:.1f} s after they ended")
    assert worker.poll() is None, "the worker exited"

    assert all(count > 0 for count in proxy.injected.values()), proxy.injected
    failed = [e for e in live.worker_events() if e.get("event") == "sqs.receive_failed"]
    assert failed and all(e["level"] == "warning" for e in failed)
    job_queue = [e for e in failed if e["queue"] == live.stack.settings.queue_name]
    # Backed off (0.5 s doubling to 5 s): a handful of polls in 10 s, not a tight loop of failures.
    assert 3 <= len(job_queue) <= 12, job_queue
    assert not [e for e in live.worker_events() if e.get("event") == "job.failed"]
    text = worker_log(live)
    for symptom in ("Error in timer", "Unrecoverable error"):
        assert symptom not in text, text[-4000:]


def test_a_step_whose_next_message_cannot_be_sent_is_delivered_again_and_the_job_finishes(make_stack, proxy):
    """SendMessage fails for longer than a step keeps trying: its message is not acked, comes back, hands on."""
    from tasks.steps import HAND_ON_SECONDS

    live = make_stack(worker=False)
    worker = start_worker_behind(live, proxy)
    warm = live.submit()
    assert live.wait_terminal(warm["jobId"], timeout=60)["state"] == "done"

    proxy.faulting = {"SendMessage"}
    job = live.submit()  # sent by the API, straight to the emulator
    time.sleep(HAND_ON_SECONDS + 4)
    assert live.status(job["jobId"])["state"] == "running"  # its first step recorded, its message held
    proxy.faulting = set()
    body = live.wait_terminal(job["jobId"], timeout=60)
    assert body["state"] == "done", body
    assert worker.poll() is None

    events = [e for e in live.worker_events() if e.get("jobId") == job["jobId"]]
    names = [e.get("event") for e in events]
    assert "step.hand_on_failed" in names and "job.failed" not in names
    assert any(e.get("event") == "step.already_recorded" for e in events), "the message was not delivered again"
    item = live.raw_item(job["jobId"])
    assert len(item["steps"]["L"]) == len(item["stepIds"]["SS"])  # each step recorded once


def test_a_stopped_worker_logs_no_traceback(make_stack, proxy):
    """What `make run` does on Ctrl-C: SIGTERM to the worker, which stops cleanly — idle, or mid-step
    (the warm shutdown lets the step finish)."""
    live = make_stack({"FAULT_DRILLS": "1"}, worker=False)
    slow = None
    for round_ in range(3):
        worker = start_worker_behind(live, proxy)
        job = live.submit({"prompt": f"a stop, round {round_}", "seed": round_})
        assert live.wait_terminal(job["jobId"], timeout=60)["state"] == "done"
        if slow is not None:
            assert live.wait_terminal(slow, timeout=60)["state"] == "done"
            slow = None
        if round_ == 1:  # stop while a step sleeps (the slow drill: 5 s)
            slow = live.submit(headers={"X-Fault-Drill": "slow:layout_rooms"})["jobId"]
            deadline = time.monotonic() + 30
            while not live.status(slow)["steps"] and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(1)
        else:
            time.sleep(1 + round_)  # control-queue long polls are out at different points
        stop_warm(live, worker)
    text = worker_log(live)
    assert text.count("Warm shutdown") == 3
    for symptom in ("Error in timer", "Traceback", "WorkerLostError"):
        assert symptom not in text, text[-4000:]


def test_a_worker_started_while_sqs_fails_every_request_waits_and_then_runs_a_job(make_stack, proxy):
    """Its consumer declares its queues as it starts (GetQueueAttributes...): with kombu's own channel
    a throttle or a 500 there was "Unrecoverable error", and the worker exited (found by the 20 % run)."""
    live = make_stack(worker=False)
    proxy.faulting = ALL
    worker = start_worker_behind(live, proxy)
    time.sleep(8)
    assert worker.poll() is None, "the worker exited"
    proxy.faulting = set()
    job = live.submit()
    assert live.wait_terminal(job["jobId"], timeout=60)["state"] == "done"
    assert worker.poll() is None, "the worker exited"
    declaring = [e for e in live.worker_events() if e.get("event") == "sqs.call_failed"]
    assert declaring and all(e["level"] == "warning" for e in declaring), declaring
    assert {e["operation"] for e in declaring} <= {"queue_declare", "queue_bind", "exchange_declare"}, declaring
    text = worker_log(live)
    for symptom in ("Unrecoverable error", "Error in timer"):
        assert symptom not in text, text[-4000:]
