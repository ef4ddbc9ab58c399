"""The steps in run order, and dispatch by step name (the names the Celery tasks share)."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from types import MappingProxyType
from typing import Any

from .contract import StepOutput
from .doors import connect_doors
from .layout import layout_rooms
from .minimap import render_minimap
from .populate import populate
from .prompt import parse_prompt
from .validate import validate_level

STEP_FUNCTIONS: Mapping[str, Callable[[Mapping[str, Any]], StepOutput]] = MappingProxyType(
    {
        "parse_prompt": parse_prompt,
        "layout_rooms": layout_rooms,
        "connect_doors": connect_doors,
        "populate": populate,
        "validate_level": validate_level,
        "render_minimap": render_minimap,
    }
)
STEPS: tuple[str, ...] = tuple(STEP_FUNCTIONS)


def run_step(name: str, previous: Mapping[str, Any]) -> StepOutput:
    """Run the step called name on the previous step's data (the request, for parse_prompt)."""
    if name not in STEP_FUNCTIONS:
        raise KeyError(f"unknown pipeline step {name!r}; the steps are {', '.join(STEPS)}")
    with _no_cycle_collection():
        return STEP_FUNCTIONS[name](previous)


@contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """Pause the cyclic garbage collector for a step; the output does not depend on it.

    A step allocates hundreds of thousands of small tuples and lists (cells, rooms), none in a
    cycle; the collector would walk them all again and again for nothing: a third of the time of
    a 1,000-room level. Reference counting still frees everything; collection resumes after.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
