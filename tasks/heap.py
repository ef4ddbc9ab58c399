"""Keep the garbage collector's full pass off the objects a long-lived process makes as it starts.

A worker's pool process tracks about 190,000 objects once it has built its AWS clients (boto3's
service models, Celery, kombu, the pipeline's tables), the API's workers as many. Python's full
collection walks every one of them (about 80 ms on this project's machines), and it runs whenever
enough objects have outlived the younger collections: every few seconds under load, in the middle
of whichever step or request holds the interpreter. Those objects live as long as the process, so
each of those passes finds nothing in them. ``freeze_startup_heap`` collects once, then moves every
object still alive to the permanent generation (``gc.freeze``), which no later collection walks: a
full pass then looks only at what the process made since, a few milliseconds. Reference counting
frees frozen objects as before; only a cycle among them that becomes garbage is never collected,
which is why the collection comes first, why only processes' start-up objects are frozen, and why
a process that replaces some of them thaws before it freezes again.

This module imports nothing but the standard library: the API's gunicorn settings call it.
"""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Frozen:
    """What one freeze did: objects frozen in all (earlier freezes' included), and its time."""

    objects: int
    ms: int


def freeze_startup_heap(*, thaw: bool = False) -> Frozen:
    """Collect garbage, then freeze every object left (see the module's docstring).

    ``thaw`` first returns what earlier freezes froze to the collector, so that whatever of it has
    become garbage since (a consumer's old connection, replaced after it was lost) is collected
    instead of kept for ever. A process whose frozen objects it shares with its parent, as a pool
    process does, does not thaw: the collection would write to every one of them.
    """
    started = time.monotonic()
    if thaw:
        gc.unfreeze()
    gc.collect()
    gc.freeze()
    return Frozen(objects=gc.get_freeze_count(), ms=round((time.monotonic() - started) * 1000))
