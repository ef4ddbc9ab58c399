"""render_minimap: draw the level as ASCII and assemble the final scene graph.

The minimap is `height` lines of exactly `width` characters, each ending in a newline, with no
legend line. Rooms tile the grid, so every cell is wall or floor and nothing is left blank:

    #  wall (the outer wall too)        S  player start
    .  floor                            E  exit
    +  door                             B  boss
    a-z  enemies, A-Z  items, by style (doom: i imp, z zombieman, d demon, c cacodemon;
         M medkit, A shells, R armor, K keycard; see styles.py for the rest)

The scene graph's "legend" maps every glyph the level's style can use to what it means.
"""

from __future__ import annotations

from collections.abc import Mapping

from .contract import PipelineError, StepOutput, plural
from .level import Level
from .styles import Style, style_named

SCENE_GRAPH_VERSION = 1
WALL, FLOOR, DOOR, START, EXIT, BOSS = "#", ".", "+", "S", "E", "B"


def render_minimap(previous: Mapping) -> StepOutput:
    """Draw the ASCII minimap and build the scene graph: {"sceneGraph": {...}, "asciiMinimap": "..."}."""
    level = Level.from_data(previous)
    if level.entities is None:
        raise PipelineError("previous data has no entities yet; run populate first")
    style = style_named(level.request.style)
    legend = _legend(style)
    glyphs = {description: glyph for glyph, description in legend.items()}
    plan, rooms, doors, entities = level.plan, level.rooms or (), level.doors or (), level.entities
    grid = [[WALL] * plan.width for _ in range(plan.height)]
    for room in rooms:
        for x, y in room.cells():
            grid[y][x] = FLOOR
    for door in doors:
        grid[door.y][door.x] = DOOR
    for entity in entities:
        glyph = glyphs.get(_describe(entity.type, entity.kind))
        if glyph is None:
            raise PipelineError(
                f"entity {entity.id!r} is a {entity.kind[:40]!r}, which the {style.name} style lacks"
            )
        grid[entity.y][entity.x] = glyph
    minimap = "".join("".join(row) + "\n" for row in grid)
    count = {kind: sum(room.kind == kind for room in rooms) for kind in ("corridor", "hall")}
    count |= {type_: sum(entity.type == type_ for entity in entities) for type_ in ("enemy", "item", "boss")}
    stats = {
        "rooms": len(rooms),
        "corridors": count["corridor"],
        "halls": count["hall"],
        "doors": len(doors),
        "loops": len(doors) - (len(rooms) - 1),
        "enemies": count["enemy"],
        "bosses": count["boss"],
        "items": count["item"],
        "floorCells": sum(room.area for room in rooms),
    }
    data = level.to_data()
    scene_graph = {
        "version": SCENE_GRAPH_VERSION,
        "request": data["request"],
        "level": {"width": plan.width, "height": plan.height, "lighting": plan.lighting},
        "features": data["features"],
        "rooms": data["rooms"],
        "doors": data["doors"],
        "entities": data["entities"],
        "legend": legend,
        "stats": stats,
    }
    summary = (
        f"Composed {plural(len(rooms), 'room')}, {plural(len(doors), 'door')}, "
        f"{plural(count['enemy'] + count['boss'], 'enemy', 'enemies')} and {plural(count['item'], 'item')} "
        f"into a {plan.width}x{plan.height} minimap"
    )
    return StepOutput({"sceneGraph": scene_graph, "asciiMinimap": minimap}, summary)


def _legend(style: Style) -> dict[str, str]:
    legend = {
        WALL: "wall",
        FLOOR: "floor",
        DOOR: "door",
        START: _describe("player_start", "player"),
        EXIT: _describe("exit", style.exit),
        BOSS: _describe("boss", style.boss),
    }
    legend |= {glyph: _describe("enemy", kind) for kind, glyph in style.enemies}
    legend |= {glyph: _describe("item", kind) for kind, glyph in style.items}
    return legend


def _describe(type_: str, kind: str) -> str:
    return f"{type_}: {kind}"
