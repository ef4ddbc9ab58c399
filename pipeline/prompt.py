"""parse_prompt: validate the request, read keyword features from the prompt, and plan the level.

The prompt is trimmed of surrounding whitespace and otherwise kept exactly as given (control
characters, emoji, right-to-left text and all); it is carried through to the scene graph.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .contract import StepOutput, plural
from .features import extract_features
from .level import Level
from .plan import make_plan
from .request import Request
from .styles import style_named


def parse_prompt(request: Mapping[str, Any]) -> StepOutput:
    """Turn a request {"prompt", "seed", "style", "rooms"?} into features and a plan for the later steps."""
    checked = Request.from_data(request)
    features = extract_features(checked.prompt)
    plan = make_plan(style_named(checked.style), features, checked.rooms)
    level = Level(request=checked, features=features.to_data(), plan=plan)
    summary = (
        f"Read {plural(len(checked.prompt), 'character')} and {plural(len(features.keywords), 'keyword')}; "
        f"planned {plural(plan.rooms, 'room')}, {plural(plan.locks, 'lock')} and "
        f"{plural(plan.enemies, 'enemy', 'enemies')} in the {checked.style} style"
    )
    return StepOutput(level.to_data(), summary)
