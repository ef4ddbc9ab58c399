"""The plan: a style's defaults adjusted by a prompt's features, in numbers later steps build to."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .contract import require_field, require_int, require_mapping
from .features import Features
from .styles import Style

MIN_ROOMS, MAX_ROOMS = 3, 24
MIN_WIDTH, MAX_WIDTH = 24, 64
MIN_HEIGHT, MAX_HEIGHT = 16, 40
MAX_ENTITIES_PER_KIND = 200

# (numerator, denominator) multipliers, so sizes stay integers.
_SIZE_ROOMS = {"small": (2, 3), "medium": (1, 1), "large": (3, 2)}
_SIZE_CELLS = {"small": (3, 4), "medium": (1, 1), "large": (5, 4)}


@dataclass(frozen=True)
class Plan:
    """Target numbers for one level; the grid size includes the one-cell outer wall."""

    rooms: int
    width: int
    height: int
    corridor_chance: int
    loops: int
    enemies: int
    items: int
    boss: bool
    lighting: int

    @classmethod
    def from_data(cls, data: Any) -> Plan:
        """Read a plan back from JSON data, checking every number is in range."""
        data = require_mapping(data, "plan")
        return cls(
            rooms=require_int(data, "rooms", "plan", MIN_ROOMS, MAX_ROOMS),
            width=require_int(data, "width", "plan", MIN_WIDTH, MAX_WIDTH),
            height=require_int(data, "height", "plan", MIN_HEIGHT, MAX_HEIGHT),
            corridor_chance=require_int(data, "corridorChance", "plan", 0, 100),
            loops=require_int(data, "loops", "plan", 0, MAX_ROOMS * MAX_ROOMS),
            enemies=require_int(data, "enemies", "plan", 0, MAX_ENTITIES_PER_KIND),
            items=require_int(data, "items", "plan", 0, MAX_ENTITIES_PER_KIND),
            boss=require_field(data, "boss", bool, "plan"),
            lighting=require_int(data, "lighting", "plan", 0, 100),
        )

    def to_data(self) -> dict:
        """Return the plan as plain JSON data."""
        return {
            "rooms": self.rooms,
            "width": self.width,
            "height": self.height,
            "corridorChance": self.corridor_chance,
            "loops": self.loops,
            "enemies": self.enemies,
            "items": self.items,
            "boss": self.boss,
            "lighting": self.lighting,
        }


def make_plan(style: Style, features: Features) -> Plan:
    """Combine a style's defaults with a prompt's features into a plan."""
    num, den = _SIZE_ROOMS[features.size]
    if features.room_hint is not None:
        rooms = features.room_hint
    else:
        rooms = style.rooms * num // den + (2 if features.corridor_heavy else 0)
    rooms = _clamp(rooms, MIN_ROOMS, MAX_ROOMS)
    num, den = _SIZE_CELLS[features.size]
    area = rooms * style.cells_per_room * num // den
    # An 8:5 grid reads well in a terminal; +2 leaves room for the outer wall.
    width = _clamp(math.isqrt(area * 8 // 5) + 2, MIN_WIDTH, MAX_WIDTH)
    height = _clamp(width * 5 // 8, MIN_HEIGHT, MAX_HEIGHT)
    return Plan(
        rooms=rooms,
        width=width,
        height=height,
        corridor_chance=_clamp(style.corridor_chance + (40 if features.corridor_heavy else 0), 0, 90),
        loops=rooms * style.loop_percent // 100 + (1 if features.corridor_heavy else 0),
        enemies=max(1, rooms * style.enemies_per_10_rooms * (3 if features.dark else 2) // 20),
        items=max(1, rooms * style.items_per_10_rooms * (2 if features.treasure else 1) // 10),
        boss=features.boss,
        lighting=_clamp(style.lighting - (35 if features.dark else 0), 5, 100),
    )


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))
