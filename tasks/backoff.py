"""How long to wait before trying again: exponential, capped, with "equal" jitter.

The n-th wait in a row is drawn from the upper half of ``min(cap, base * 2 ** (n - 1))``. Half
of it is certain, so a number of tries spans a known least time (what docs/reliability.md adds up
to show an outage is ridden out); the other half is random, so workers that failed together do
not all try again at the same instant. (Celery's ``retry_jitter`` and botocore's standard mode
draw from the whole range, which can add up to nothing.)
"""

from __future__ import annotations

import random


def ceiling(attempt: int, base: float, cap: float) -> float:
    """The longest wait after failure number ``attempt`` (1, 2, ...) in a row."""
    return min(cap, base * 2 ** (max(attempt, 1) - 1))


def wait(attempt: int, base: float, cap: float) -> float:
    """Seconds to wait after failure number ``attempt`` in a row: between half the ceiling and all of it."""
    top = ceiling(attempt, base, cap)
    return random.uniform(top / 2, top)  # noqa: S311 - jitter, not a secret


def least_total(attempts: int, base: float, cap: float) -> float:
    """The least time ``attempts`` waits in a row can add up to."""
    return sum(ceiling(n, base, cap) / 2 for n in range(1, attempts + 1))
