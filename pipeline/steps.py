"""The steps in run order, and dispatch by step name (the names the Celery tasks share)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

from .contract import StepOutput
from .doors import connect_doors
from .layout import layout_rooms
from .minimap import render_minimap
from .populate import populate
from .prompt import parse_prompt
from .validate import validate_level

STEP_FUNCTIONS: Mapping[str, Callable[[Mapping], StepOutput]] = MappingProxyType(
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


def run_step(name: str, previous: Mapping) -> StepOutput:
    """Run the step called name on the previous step's data (the request, for parse_prompt)."""
    if name not in STEP_FUNCTIONS:
        raise KeyError(f"unknown pipeline step {name!r}; the steps are {', '.join(STEPS)}")
    return STEP_FUNCTIONS[name](previous)
