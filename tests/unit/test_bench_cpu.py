"""`make bench` (g): the CPU each process group spends per job and per bare chain, from /proc."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from bench import cpu_seconds, per_item_ms  # scripts/ is on the path (tests/conftest.py)

TICKS = os.sysconf("SC_CLK_TCK")


def stat_line(pid: int, command: str, pgrp: int, utime: int, stime: int) -> str:
    """/proc/<pid>/stat as Linux writes it: pid, (command), state, ppid, pgrp, ... utime, stime, ..."""
    after = ["S", "1", str(pgrp), str(pgrp), "0", "-1", "4194560", "0", "0", "0", "0", str(utime), str(stime)]
    return f"{pid} ({command}) " + " ".join(after + ["0"] * 39) + "\n"


@pytest.fixture
def proc(tmp_path: Path) -> Path:
    processes = [
        (100, "python", 100, 30, 10),  # a worker's main process
        (101, "celery (pool) ) x", 100, 5, 5),  # its pool child; a command with ") " in it
        (200, "python", 200, 7, 3),  # the emulator
        (300, "sleep", 300, 1000, 1000),  # some other group
    ]
    for pid, command, pgrp, utime, stime in processes:
        (tmp_path / str(pid)).mkdir()
        (tmp_path / str(pid) / "stat").write_text(stat_line(pid, command, pgrp, utime, stime))
    (tmp_path / "400" / "stat").mkdir(parents=True)  # unreadable, as the stat of a process that just ended
    (tmp_path / "self").mkdir()
    return tmp_path


def test_a_group_is_its_leader_and_every_process_in_it(proc: Path) -> None:
    assert cpu_seconds({"worker": 100, "emulator": 200}, proc) == pytest.approx(
        {"worker": 50 / TICKS, "emulator": 10 / TICKS}
    )


def test_a_group_with_no_process_left_spent_nothing(proc: Path) -> None:
    assert cpu_seconds({"api": 999}, proc) == {"api": 0.0}


def test_per_item_takes_out_what_the_group_spends_idle_over_as_long() -> None:
    spent = {"emulator": 2.5, "worker": 1.2, "api": 0.01}
    idle = {"emulator": 0.05, "worker": 0.02, "api": 0.01}
    # 10 items in 4 s: 0.2 s of the emulator's 2.5 were its polling; the API only idled.
    assert per_item_ms(spent, idle, seconds=4.0, items=10) == {"emulator": 230, "worker": 112, "api": 0}
