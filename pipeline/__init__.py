"""Pure level generation: each step takes plain JSON data and returns plain JSON data.

Run the STEPS in order: parse_prompt takes the request {"prompt", "seed", "style", "rooms"?};
every later step takes the previous step's `.data` (after a JSON round trip) and needs nothing
else. validate_level returns {"sceneGraph": <scene/1>}; the last step, render_minimap, returns
{"sceneGraph": <scene/1>, "asciiMinimap": "..."}. docs/scene-graph.md documents scene/1.

Nothing here reads the clock, the environment or global random state: all randomness comes from
the request (Request.stream), so a request gives byte-identical output on any machine.
"""

from .contract import LevelInvalid, PipelineError, StepOutput, encode_json
from .doors import connect_doors
from .layout import layout_rooms
from .minimap import render_minimap
from .populate import populate
from .prompt import parse_prompt
from .request import MAX_PROMPT_CHARS, MAX_ROOMS, MAX_SEED, MIN_ROOMS
from .scene import SCHEMA
from .steps import STEP_FUNCTIONS, STEPS, run_step
from .styles import DEFAULT_STYLE, STYLES
from .validate import scene_problems, validate_level

__all__ = [
    "DEFAULT_STYLE",
    "LevelInvalid",
    "MAX_PROMPT_CHARS",
    "MAX_ROOMS",
    "MAX_SEED",
    "MIN_ROOMS",
    "SCHEMA",
    "STEPS",
    "STEP_FUNCTIONS",
    "STYLES",
    "PipelineError",
    "StepOutput",
    "connect_doors",
    "encode_json",
    "layout_rooms",
    "parse_prompt",
    "populate",
    "render_minimap",
    "run_step",
    "scene_problems",
    "validate_level",
]
