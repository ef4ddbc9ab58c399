"""The plan: a style's defaults adjusted by a prompt's words, in numbers the later steps build to."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .contract import PipelineError, require_field, require_int, require_mapping
from .features import Features
from .request import MAX_ROOMS, MIN_ROOMS
from .styles import Style

# A prompt may ask for a few dozen rooms ("40 rooms"); bigger levels need the request's "rooms" field.
MAX_PROMPT_ROOMS = 50
MAX_LOCKS = 3
MAX_ENTITIES_PER_KIND = 5000
SIZES = ("small", "medium", "large")

# (numerator, denominator) multipliers, so sizes stay integers.
_SIZE_ROOMS = {"small": (2, 3), "medium": (1, 1), "large": (3, 2)}
_SIZE_LOCKS = {"small": 1, "medium": 2, "large": 3}
_DENSITY = {"sparse": 50, "normal": 100, "dense": 160}


@dataclass(frozen=True)
class Plan:
    """Target numbers for one level."""

    rooms: int  # rooms to build, corridors not counted
    size: str  # "small", "medium" or "large": also scales the rooms themselves
    corridors: int  # percent: how readily the construction makes corridors
    loops: int  # connections beyond a spanning tree
    locks: int  # coloured key / locked door pairs wanted (fewer when the level is too short)
    enemies: int
    items: int
    boss: bool
    light: int  # 0..255
    density: int  # enemies, in percent of the style's usual count

    @classmethod
    def from_data(cls, data: Any) -> Plan:
        """Read a plan back from JSON data, checking every number is in range."""
        data = require_mapping(data, "plan")
        size = require_field(data, "size", str, "plan")
        if size not in SIZES:
            raise PipelineError(f"plan.size must be one of {', '.join(SIZES)}, got {size[:40]!r}")
        return cls(
            rooms=require_int(data, "rooms", "plan", MIN_ROOMS, MAX_ROOMS),
            size=size,
            corridors=require_int(data, "corridors", "plan", 0, 100),
            loops=require_int(data, "loops", "plan", 0, MAX_ROOMS),
            locks=require_int(data, "locks", "plan", 0, MAX_LOCKS),
            enemies=require_int(data, "enemies", "plan", 0, MAX_ENTITIES_PER_KIND),
            items=require_int(data, "items", "plan", 0, MAX_ENTITIES_PER_KIND),
            boss=require_field(data, "boss", bool, "plan"),
            light=require_int(data, "light", "plan", 0, 255),
            density=require_int(data, "density", "plan", 0, 1000),
        )

    def to_data(self) -> dict[str, Any]:
        """Return the plan as plain JSON data."""
        return {
            "rooms": self.rooms,
            "size": self.size,
            "corridors": self.corridors,
            "loops": self.loops,
            "locks": self.locks,
            "enemies": self.enemies,
            "items": self.items,
            "boss": self.boss,
            "light": self.light,
            "density": self.density,
        }


def make_plan(style: Style, features: Features, rooms: int | None = None) -> Plan:
    """Combine a style's defaults with a prompt's features (and the request's room count, if any)."""
    if rooms is None and features.room_hint is not None:
        rooms = _clamp(features.room_hint, MIN_ROOMS, MAX_PROMPT_ROOMS)
    if rooms is None:
        num, den = _SIZE_ROOMS[features.size]
        rooms = _clamp(style.rooms * num // den + (2 if features.corridor_heavy else 0), MIN_ROOMS, MAX_PROMPT_ROOMS)
    density = _DENSITY[features.density] + (50 if features.dark else 0)
    light = style.light - (80 if features.dark else 0) + (64 if features.bright else 0)
    return Plan(
        rooms=rooms,
        size=features.size,
        corridors=_clamp(style.corridors + (30 if features.corridor_heavy else 0), 0, 100),
        loops=rooms * style.loop_percent // 100 + (1 if features.corridor_heavy else 0),
        locks=min(_SIZE_LOCKS[features.size] + (1 if features.keys else 0), MAX_LOCKS, rooms // 4),
        enemies=_clamp(rooms * style.enemies_per_10_rooms * density // 1000, 1, MAX_ENTITIES_PER_KIND),
        items=_clamp(
            rooms * style.items_per_10_rooms * (2 if features.treasure else 1) // 10, 1, MAX_ENTITIES_PER_KIND
        ),
        boss=features.boss,
        light=_clamp(light, 16, 255),
        density=density,
    )


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))
