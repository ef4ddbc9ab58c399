"""The request a level is generated from, and the only source of randomness in the pipeline."""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from typing import Any

from .contract import PipelineError, require_field, require_int, require_mapping
from .styles import DEFAULT_STYLE, STYLES

MAX_PROMPT_CHARS = 2000
MAX_SEED = 2**31 - 1


@dataclass(frozen=True)
class Request:
    """A validated request: trimmed prompt, seed and style."""

    prompt: str
    seed: int
    style: str

    @classmethod
    def from_data(cls, data: Any) -> Request:
        """Validate and normalise a request {"prompt", "seed", "style"}; no style means DEFAULT_STYLE."""
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
        return cls(prompt=prompt, seed=seed, style=style)

    def to_data(self) -> dict:
        """Return the request as plain JSON data."""
        return {"prompt": self.prompt, "seed": self.seed, "style": self.style}

    def rng(self, step: str) -> random.Random:
        """Return a generator seeded from this request and the step name alone, the same on every machine."""
        # hash() is salted per process, so seed material goes through sha256 instead.
        prompt_digest = hashlib.sha256(self.prompt.encode("utf-8")).hexdigest()
        material = f"ghost-engine/1:{self.seed}:{self.style}:{step}:{prompt_digest}".encode("utf-8")
        return random.Random(int.from_bytes(hashlib.sha256(material).digest(), "big"))
