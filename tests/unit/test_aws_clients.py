"""storage.bootstrap.aws_client: the connections an AWS client keeps for the threads that share it.

An API process's request threads (API_THREADS) share its DynamoDB client and its SQS sender. A
client keeps botocore's 10 connections unless told otherwise; a burst answered by more threads
than that opened a connection for each call past them and dropped it again, with a urllib3
warning each time (38 in a burst of 48 on an API of 24 threads). Loopback only: a small HTTP
server stands in for DynamoDB and counts the connections it is given.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from storage.bootstrap import aws_client
from storage.settings import Settings

THREADS = 24


class _ListTables(BaseHTTPRequestHandler):
    """Answers every request as DynamoDB answers ListTables, once THREADS requests are in flight at once."""

    protocol_version = "HTTP/1.1"  # keeps connections alive, as AWS does
    server: _Server

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.server.peers.add(self.client_address)
        # So every thread holds a connection at the same moment (if not, the assertions say so).
        with contextlib.suppress(threading.BrokenBarrierError):
            self.server.together.wait()
        body = json.dumps({"TableNames": []}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-amz-json-1.0")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _ListTables)
        self.peers: set[tuple[str, int]] = set()
        self.together = threading.Barrier(THREADS, timeout=5)


@pytest.fixture
def dynamodb():
    server = _Server()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    environ = {
        "AWS_ENDPOINT_URL": url,
        "API_THREADS": str(THREADS),
        "AWS_TIMEOUT_SECONDS": "10",
        "AWS_MAX_ATTEMPTS": "1",
    }
    yield server, Settings.from_env(environ)
    server.shutdown()
    server.server_close()


def test_a_client_shared_by_every_api_thread_keeps_a_connection_for_each(dynamodb, caplog):
    """Two bursts of API_THREADS calls at once on one client: every call of the second burst
    reuses a connection of the first, and urllib3 drops none (botocore's default pool of 10
    opened 14 connections more in each burst, and warned 14 times)."""
    server, settings = dynamodb
    client = aws_client(settings, "dynamodb")
    caplog.set_level(logging.WARNING, logger="urllib3.connectionpool")
    with ThreadPoolExecutor(THREADS) as pool:
        for _ in range(2):
            assert list(pool.map(lambda _: client.list_tables()["TableNames"], range(THREADS))) == [[]] * THREADS
            server.together.reset()
    assert [r.getMessage() for r in caplog.records if r.name == "urllib3.connectionpool"] == []
    assert len(server.peers) == THREADS
