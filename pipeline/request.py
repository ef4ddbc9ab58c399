"""The request a level is generated from, and the only source of randomness in the pipeline."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from .contract import PipelineError, require_field, require_int, require_mapping
from .rng import Stream
from .styles import DEFAULT_STYLE, STYLES

MAX_PROMPT_CHARS = 2000
MAX_SEED = 2**31 - 1
MIN_ROOMS, MAX_ROOMS = 3, 1000


@dataclass(frozen=True)
class Request:
    """A validated request: trimmed prompt, seed, style, and the room count when asked for."""

    prompt: str
    seed: int
    style: str
    rooms: int | None = None

    @classmethod
    def from_data(cls, data: Any) -> Request:
        """Validate and normalise a request {"prompt", "seed", "style", "rooms"?}; no style means DEFAULT_STYLE."""
        data = require_mapping(data, "request")
        prompt = require_field(data, "prompt", str, "request").strip()
        if not 1 <= len(prompt) <= MAX_PROMPT_CHARS:
            raise PipelineError(
                f"request.prompt must be 1 to {MAX_PROMPT_CHARS} characters after trimming, got {len(prompt)}"
            )
        # A lone surrogate can arrive through JSON ("\ud800") but cannot be written as UTF-8.
        if any("\ud800" <= char <= "\udfff" for char in prompt):
            raise PipelineError("request.prompt contains an unpaired surrogate, which is not valid Unicode")
        seed = require_int(data, "seed", "request", 0, MAX_SEED)
        style = data.get("style")
        if style is None:
            style = DEFAULT_STYLE
        elif not isinstance(style, str) or style not in STYLES:
            shown = repr(style)[:40]
            raise PipelineError(f"request.style must be one of {', '.join(STYLES)}, got {shown}")
        rooms = None
        if data.get("rooms") is not None:
            rooms = require_int(data, "rooms", "request", MIN_ROOMS, MAX_ROOMS)
        return cls(prompt=prompt, seed=seed, style=style, rooms=rooms)

    def to_data(self) -> dict[str, Any]:
        """Return the request as plain JSON data ("rooms" only when it was asked for)."""
        data: dict[str, Any] = {"prompt": self.prompt, "seed": self.seed, "style": self.style}
        if self.rooms is not None:
            data["rooms"] = self.rooms
        return data

    def stream(self, step: str, attempt: int = 1) -> Stream:
        """The random stream of one step of one generation attempt: the same on every machine."""
        # hash() is salted per process, so the key is built from the request's own bytes.
        material = "\x1f".join(
            ("ghost-engine/scene1", str(self.seed), self.style, str(self.rooms), step, str(attempt), self.prompt)
        )
        return Stream(hashlib.sha256(material.encode("utf-8")).digest())
