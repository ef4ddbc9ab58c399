"""A fault-injecting HTTP proxy on loopback, between the stack and the AWS emulator.

Every AWS request of the API, the workers and the CLI (boto3's, and kombu's own pycurl client)
goes through it when their endpoint (AWS_ENDPOINT_URL, the broker URL, the emulator's MOTO_PORT
for the queue URLs it hands out) names the proxy. It forwards each request untouched; the
emulator routes it by the SigV4 credential scope, which is also how the proxy tells the
service (dynamodb, s3, sqs, sns). The emulator's own ``/moto-api/`` is never faulted.

Faults, drawn from one seeded generator, each counted per service and kind:

- ``throttle``: the service's own throttling answer, not forwarded (DynamoDB
  ProvisionedThroughputExceededException 400, S3 SlowDown 503, SQS ThrottlingException 400,
  SNS Throttling 400);
- ``error500``: InternalError 500, not forwarded;
- ``applied_500``: forwarded (applied), the answer discarded, 500 returned;
- ``applied_reset``: forwarded (applied), then the connection reset;
- ``slow``: forwarded (applied), answered ``slow_seconds`` later (longer than the clients'
  read timeout, so they give up and retry).

``rate`` faults that share of the requests to ``services`` with kinds drawn from ``kinds``;
``outage(service, seconds)`` faults every request to one service for a while; ``script``
faults the next requests of one operation, for tests of one write.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import random
import re
import socket
import struct
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

SERVICES = ("dynamodb", "s3", "sqs", "sns")
KINDS = ("throttle", "error500", "applied_500", "applied_reset", "slow")
APPLIED = frozenset({"applied_500", "applied_reset", "slow"})
_SCOPE = re.compile(r"Credential=[^/,\s]+/\d{8}/[^/]+/([a-z0-9-]+)/aws4_request")
_QUERY_SCOPE = re.compile(r"^[^/]+/\d{8}/[^/]+/([a-z0-9-]+)/aws4_request$")
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length", "proxy-connection"})


@dataclass
class ScriptedFault:
    service: str
    operation: str  # e.g. "UpdateItem", "PutObject", "SendMessage"
    kind: str
    remaining: int = 1


@dataclass
class FaultPlan:
    """What the proxy does; changed while it runs (under its lock)."""

    rate: float = 0.0
    services: tuple[str, ...] = SERVICES
    kinds: tuple[str, ...] = KINDS
    outages: dict[str, float] = field(default_factory=dict)  # service -> monotonic end
    scripted: list[ScriptedFault] = field(default_factory=list)


class FaultProxy:
    """The proxy: ``start()``, point the stack at ``url``, change the plan, read ``counts``."""

    def __init__(self, upstream_port: int, *, seed: int = 13, slow_seconds: float = 1.6, port: int = 0) -> None:
        self.upstream = ("127.0.0.1", upstream_port)
        self.slow_seconds = slow_seconds
        self.plan = FaultPlan()
        self.faults: Counter[tuple[str, str]] = Counter()  # (service, kind) -> faults injected
        self.requests: Counter[str] = Counter()  # service -> requests seen
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._server = _QuietServer(("127.0.0.1", port), _handler_for(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FaultProxy:
        self._thread = threading.Thread(target=self._server.serve_forever, name="fault-proxy", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # --- the plan ----------------------------------------------------------------

    def set_faults(self, rate: float, *, services: tuple[str, ...] = SERVICES, kinds: tuple[str, ...] = KINDS) -> None:
        """Fault ``rate`` of the requests to ``services``, with kinds drawn from ``kinds``."""
        assert set(services) <= set(SERVICES) and set(kinds) <= set(KINDS)
        with self._lock:
            self.plan.rate, self.plan.services, self.plan.kinds = rate, tuple(services), tuple(kinds)

    def outage(self, service: str, seconds: float) -> None:
        """Fault every request to ``service`` for ``seconds`` from now."""
        with self._lock:
            self.plan.outages[service] = time.monotonic() + seconds

    def script(self, service: str, operation: str, kind: str, times: int = 1) -> ScriptedFault:
        """Fault the next ``times`` requests of ``operation`` to ``service`` with ``kind``."""
        fault = ScriptedFault(service, operation, kind, times)
        with self._lock:
            self.plan.scripted.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self.plan = FaultPlan()

    def reset_counts(self) -> None:
        with self._lock:
            self.faults.clear()
            self.requests.clear()

    def report(self) -> str:
        """Requests and faults injected, per service and kind, as a few lines of text."""
        with self._lock:
            faults, requests = Counter(self.faults), Counter(self.requests)
        lines = [f"{'service':<9} {'requests':>8} " + " ".join(f"{kind:>13}" for kind in KINDS)]
        for service in SERVICES:
            row = " ".join(f"{faults[(service, kind)]:>13}" for kind in KINDS)
            lines.append(f"{service:<9} {requests[service]:>8} {row}")
        return "\n".join(lines)

    # --- per request -------------------------------------------------------------

    def choose(self, service: str | None, operation: str) -> str | None:
        """The fault for one request, or None to forward it untouched (and count it)."""
        if service is None:
            return None
        with self._lock:
            self.requests[service] += 1
            kind = None
            for fault in self.plan.scripted:
                if fault.remaining > 0 and fault.service == service and fault.operation == operation:
                    fault.remaining -= 1
                    kind = fault.kind
                    break
            if kind is None and self.plan.outages.get(service, 0) > time.monotonic():
                kind = self._random.choice(self.plan.kinds)
            if kind is None and service in self.plan.services and self._random.random() < self.plan.rate:
                kind = self._random.choice(self.plan.kinds)
            if kind is not None:
                self.faults[(service, kind)] += 1
            return kind


class _QuietServer(ThreadingHTTPServer):
    """A client gone mid-request (a worker SIGKILLed) is no error of the proxy's."""

    def handle_error(self, request, client_address) -> None:
        pass


def service_of(headers, path: str) -> str | None:
    """The AWS service a request is for, from its SigV4 credential scope (header or presigned query)."""
    match = _SCOPE.search(headers.get("Authorization", ""))
    if match:
        return match.group(1)
    credential = parse_qs(urlsplit(path).query).get("X-Amz-Credential")
    if credential:
        match = _QUERY_SCOPE.match(credential[0])
        return match.group(1) if match else None
    return None


def operation_of(service: str | None, method: str, path: str, headers, body: bytes) -> str:
    """The operation's name: X-Amz-Target's, the query protocol's Action, or S3's verb and shape."""
    target = headers.get("X-Amz-Target")
    if target:
        return target.rpartition(".")[2]
    if service == "s3":
        key = urlsplit(path).path.strip("/").partition("/")[2]
        return (
            {"PUT": "PutObject", "GET": "GetObject", "HEAD": "HeadObject", "DELETE": "DeleteObject"}.get(method, method)
            if key
            else f"{method}Bucket"
        )
    form = parse_qs(body.decode("utf-8", "replace")) if body else {}
    action = form.get("Action") or parse_qs(urlsplit(path).query).get("Action")
    return action[0] if action else method


def error_answer(service: str, kind: str, headers) -> tuple[int, dict[str, str], bytes]:
    """The status, headers and body AWS answers with for a throttle or an internal error."""
    throttle = kind == "throttle"
    json_protocol = bool(headers.get("X-Amz-Target"))
    if service == "s3":
        code, status = ("SlowDown", 503) if throttle else ("InternalError", 500)
        body = f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code><Message>{code}</Message></Error>"
        return status, {"Content-Type": "application/xml"}, body.encode()
    status = 400 if throttle else 500
    if service == "dynamodb":
        code = "ProvisionedThroughputExceededException" if throttle else "InternalServerError"
        body = {"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": "fault injected"}
        return status, {"Content-Type": "application/x-amz-json-1.0"}, json.dumps(body).encode()
    code = (
        {"sqs": "ThrottlingException", "sns": "Throttling"}.get(service, "Throttling") if throttle else "InternalError"
    )
    if json_protocol:
        body = {"__type": f"com.amazonaws.{service}#{code}", "message": "fault injected"}
        answer_headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-query-error": f"{code};Sender"}
        return status, answer_headers, json.dumps(body).encode()
    body = (
        f"<ErrorResponse><Error><Type>{'Sender' if throttle else 'Receiver'}</Type><Code>{code}</Code>"
        f"<Message>fault injected</Message></Error><RequestId>fault</RequestId></ErrorResponse>"
    )
    return status, {"Content-Type": "text/xml"}, body.encode()


def _handler_for(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format, *args):
            pass

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        return b"".join(chunks)
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _handle(self) -> None:
            body = self._body()
            internal = self.path.startswith("/moto-api")
            service = None if internal else service_of(self.headers, self.path)
            kind = proxy.choose(service, operation_of(service, self.command, self.path, self.headers, body))
            if kind in ("throttle", "error500"):
                self._answer(*error_answer(service, kind, self.headers))
                return
            try:
                status, headers, payload = self._forward(body)
            except OSError:
                self._reset()
                return
            if kind == "applied_500":
                self._answer(*error_answer(service, "error500", self.headers))
            elif kind == "applied_reset":
                self._reset()
            else:
                if kind == "slow":
                    time.sleep(proxy.slow_seconds)
                self._answer(status, headers, payload)

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _handle

        def _forward(self, body: bytes) -> tuple[int, dict[str, str], bytes]:
            upstream = http.client.HTTPConnection(*proxy.upstream, timeout=60)
            try:
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                if body or self.command in ("POST", "PUT", "PATCH"):
                    headers["Content-Length"] = str(len(body))
                upstream.request(self.command, self.path, body=body, headers=headers)
                response = upstream.getresponse()
                payload = response.read()
                answer = {k: v for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP}
                if self.command == "HEAD" and response.getheader("Content-Length"):
                    answer["Content-Length"] = response.getheader("Content-Length")  # the object's
                return response.status, answer, payload
            finally:
                upstream.close()

        def _answer(self, status: int, headers: dict[str, str], payload: bytes) -> None:
            try:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                if "Content-Length" not in headers:
                    self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)
                self.wfile.flush()
            except OSError:
                self.close_connection = True

        def _reset(self) -> None:
            """Reset the client's connection (RST, not FIN), as a dropped load balancer would."""
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.connection.close()

        def finish(self) -> None:
            with contextlib.suppress(OSError):
                super().finish()

    return Handler
