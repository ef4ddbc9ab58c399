"""A throwaway PostgreSQL server for the tests: Debian's `postgresql` package, started here.

initdb and postgres refuse to run as root, so as root the server runs as ``nobody`` in a
directory it owns (Popen's user/group). It listens on a free loopback port with trust
authentication, keeps its socket in its own directory, and is stopped and removed at the end.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from local_stack import HOST, port_free, stop_process_group

USER = "ghost"  # the database superuser initdb creates


def find_bindir() -> Path | None:
    """Where initdb and postgres are: Debian's versioned directory, else PATH."""
    for candidate in sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name), reverse=True
    ):
        if (Path(candidate) / "initdb").exists():
            return Path(candidate)
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class PostgresServer:
    """PostgreSQL on 127.0.0.1:``port``; start() raises RuntimeError saying why it could not start."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.root: Path | None = None
        self.proc: subprocess.Popen | None = None

    @property
    def dsn(self) -> str:
        return f"postgresql://{USER}@{HOST}:{self.port}/postgres"

    def start(self) -> None:
        bindir = find_bindir()
        if bindir is None:
            raise RuntimeError("no PostgreSQL binaries (apt-get install postgresql)")
        if not port_free(self.port):
            raise RuntimeError(f"port {self.port} is in use")
        # Under /tmp (world-traversable), not pytest's 0700 tmp dirs: `nobody` must reach it.
        self.root = Path(tempfile.mkdtemp(prefix="ghost-pg-"))
        account = self._account()
        if account is not None:
            os.chown(self.root, account.pw_uid, account.pw_gid)
        data, log = self.root / "data", self.root / "server.log"
        self._run(
            [
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                USER,
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
                "--no-instructions",
            ],
            account,
        )
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(
                [
                    str(bindir / "postgres"),
                    "-D",
                    str(data),
                    "-h",
                    HOST,
                    "-p",
                    str(self.port),
                    "-k",
                    str(self.root),
                    "-c",
                    "fsync=off",
                    "-c",
                    "full_page_writes=off",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                **self._as(account),
            )
        deadline = time.monotonic() + 30
        while port_free(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text(errors="replace")[-500:] if log.exists() else ""
                self.stop()
                raise RuntimeError(f"postgres did not start: {tail}")
            time.sleep(0.1)

    def stop(self) -> None:
        """Fast shutdown (SIGINT), then remove its directory."""
        proc, self.proc = self.proc, None
        stop_process_group(proc, signal.SIGINT)
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    @staticmethod
    def _account() -> pwd.struct_passwd | None:
        """``nobody`` when running as root (PostgreSQL refuses root), else None: run as ourselves."""
        return pwd.getpwnam("nobody") if os.geteuid() == 0 else None

    @staticmethod
    def _as(account: pwd.struct_passwd | None) -> dict:
        if account is None:
            return {}
        return {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": [], "cwd": "/"}

    def _run(self, argv: list[str], account: pwd.struct_passwd | None) -> None:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=120, **self._as(account))
        if result.returncode != 0:
            raise RuntimeError(f"{Path(argv[0]).name} failed: {(result.stderr or result.stdout).strip()[-500:]}")
