"""Static files of the console, served under names that carry a hash of their content.

A page links ``console.3f2a9c1b.css``; the bytes behind a name never change, so browsers may keep
them for a year (``immutable``), and a new release's files get new names instead of stale caches.
"""

from __future__ import annotations

import hashlib
import mimetypes
from dataclasses import dataclass
from pathlib import Path

STATIC_DIR = Path(__file__).parent / "static"
HASH_CHARS = 12
CACHE_FOREVER = "public, max-age=31536000, immutable"


@dataclass(frozen=True)
class Asset:
    """One static file: its name, its hashed name and its bytes."""

    name: str
    hashed_name: str
    body: bytes
    content_type: str


def hashed(name: str, body: bytes) -> str:
    """``console.css`` -> ``console.<first HASH_CHARS of sha256>.css``."""
    stem, dot, ext = name.rpartition(".")
    digest = hashlib.sha256(body).hexdigest()[:HASH_CHARS]
    return f"{stem}.{digest}{dot}{ext}"


class Assets:
    """The console's static files, read once (at the first request that needs them)."""

    def __init__(self, directory: Path = STATIC_DIR) -> None:
        self._directory = directory
        self._by_name: dict[str, Asset] | None = None

    def _load(self) -> dict[str, Asset]:
        if self._by_name is None:
            found = {}
            for path in sorted(self._directory.iterdir()):
                if path.is_file():
                    body = path.read_bytes()
                    kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
                    if kind.startswith("text/") or kind.endswith("javascript"):
                        kind += "; charset=utf-8"
                    found[path.name] = Asset(path.name, hashed(path.name, body), body, kind)
            self._by_name = found
        return self._by_name

    def url_name(self, name: str) -> str:
        """The hashed name a page links for ``name`` (KeyError for a file that does not exist)."""
        return self._load()[name].hashed_name

    def by_hashed_name(self, hashed_name: str) -> Asset | None:
        """The asset served under ``hashed_name``, or None (an old hash, or no such file)."""
        return next((a for a in self._load().values() if a.hashed_name == hashed_name), None)
