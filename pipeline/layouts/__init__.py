"""The constructions: how each style builds its rooms and the links that could join them."""

from __future__ import annotations

from collections.abc import Callable

from ..plan import Plan
from ..rng import Stream
from ..styles import Style
from .attach import build_attach
from .cave import build_cave
from .draft import Layout
from .lattice import build_lattice
from .maze import build_maze

BUILDERS: dict[str, Callable[[Plan, Style, Stream], Layout]] = {
    "lattice": build_lattice,
    "attach": build_attach,
    "cave": build_cave,
    "maze": build_maze,
}


def build_layout(plan: Plan, style: Style, stream: Stream) -> Layout:
    """The style's construction run on the plan."""
    return BUILDERS[style.construction](plan, style, stream)


__all__ = ["BUILDERS", "Layout", "build_layout"]
