"""The constructions: how each style builds its rooms and the links that could join them.

Every construction builds exactly plan.rooms rooms (corridors not counted) that its links can join
into one level, or fewer when they did not fit: a maze or attach-rooms out of places to put a room,
a cave whose chambers came out too few, too small or cut off. Then it is run again on a larger
grid (SPACE_PERCENT), on the same random stream, so a level that fitted the first time is the
level it always was. When no try builds them all, which takes an unlucky stream five times over,
the level has the most rooms a try built, and layout_rooms' summary says how many.
"""

from __future__ import annotations

from collections.abc import Callable

from ..contract import PipelineError
from ..plan import Plan
from ..rng import Stream
from ..styles import Style
from .attach import build_attach
from .cave import build_cave
from .draft import Layout
from .lattice import build_lattice
from .maze import build_maze

# A construction's grid area on each try, in percent of what its plan usually needs.
SPACE_PERCENT = (100, 125, 150, 200, 250)

# (plan, style, stream, space percent) -> the layout, or None when nothing could be built.
Builder = Callable[[Plan, Style, Stream, int], Layout | None]

BUILDERS: dict[str, Builder] = {
    "lattice": build_lattice,
    "attach": build_attach,
    "cave": build_cave,
    "maze": build_maze,
}


def build_layout(plan: Plan, style: Style, stream: Stream) -> Layout:
    """The style's construction run on the plan, on larger grids until it builds plan.rooms rooms."""
    best: Layout | None = None
    for space in SPACE_PERCENT:
        layout = BUILDERS[style.construction](plan, style, stream, space)
        if layout is not None and (best is None or _rooms_in(layout) > _rooms_in(best)):
            best = layout
        if best is not None and _rooms_in(best) >= plan.rooms:
            break
    if best is None:
        raise PipelineError(f"the {style.construction} construction built no room in {len(SPACE_PERCENT)} tries")
    return best


def _rooms_in(layout: Layout) -> int:
    """The rooms a layout has, corridors not counted (what plan.rooms counts)."""
    return sum(room.kind != "corridor" for room in layout.rooms)


__all__ = ["BUILDERS", "SPACE_PERCENT", "Layout", "build_layout"]
