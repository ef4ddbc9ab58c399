"""layout_rooms: build the rooms the style's construction makes, and the links that could join them.

The construction (pipeline/layouts/, chosen by the style) decides the grid size, places the rooms
and offers links: door cells between two rooms, or corridors with a door at each end.
connect_doors chooses among the links. See pipeline/styles.py for which style builds how.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from .contract import StepOutput, plural
from .layouts import build_layout
from .level import Level
from .styles import style_named


def layout_rooms(previous: Mapping[str, Any]) -> StepOutput:
    """Lay out the planned rooms with the style's construction, and offer the links between them."""
    level = lay_out(Level.from_data(previous))
    rooms = level.rooms or ()
    corridors = sum(room.kind == "corridor" for room in rooms)
    halls = sum(room.kind == "hall" for room in rooms)
    summary = (
        f"Laid out {plural(len(rooms) - corridors, 'room')} ({plural(halls, 'hall')}) and "
        f"{plural(corridors, 'corridor')} on a {level.width}x{level.height} grid, "
        f"with {plural(len(level.links or ()), 'link')} to choose from"
    )
    return StepOutput(level.to_data(), summary)


def lay_out(level: Level) -> Level:
    """layout_rooms on a Level."""
    style = style_named(level.request.style)
    layout = build_layout(level.plan, style, level.request.stream("layout_rooms", level.attempt))
    return replace(
        level,
        width=layout.width,
        height=layout.height,
        rooms=layout.rooms,
        links=layout.links,
        doors=None,
        progression=None,
        entities=None,
    )
