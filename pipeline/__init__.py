"""Pure level generation: each step takes plain JSON data and returns plain JSON data.

Run the STEPS in order: parse_prompt takes the request {"prompt", "seed", "style"}; every later
step takes the previous step's `.data` (after a JSON round trip) and needs nothing else. The last
step, render_minimap, returns {"sceneGraph": {...}, "asciiMinimap": "..."}.

Nothing here reads the clock, the environment or global random state: all randomness comes from
the request (see Request.rng), so a request gives byte-identical output on any machine.
"""

from .contract import PipelineError, StepOutput, encode_json
from .doors import connect_doors
from .layout import layout_rooms
from .minimap import render_minimap
from .populate import populate
from .prompt import parse_prompt
from .request import MAX_PROMPT_CHARS, MAX_SEED
from .steps import STEP_FUNCTIONS, STEPS, run_step
from .styles import DEFAULT_STYLE, STYLES

__all__ = [
    "DEFAULT_STYLE",
    "MAX_PROMPT_CHARS",
    "MAX_SEED",
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
]
