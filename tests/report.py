"""Lines a test adds to the end of the run's output (what the deploy check applied, timings, skips).

Under pytest-xdist (`make test` runs most of the suite on two workers) each worker hands its lines
to the controller when it finishes, which prints them with its own (tests/conftest.py).
"""

from __future__ import annotations

LINES: list[str] = []


def add(line: str) -> None:
    """Print ``line`` in the run's closing summary."""
    LINES.append(line)
