"""What a GIF provider offers, independent of who provides it.

A provider answers search and trending with a list of ``Gif``; anything that goes
wrong (unreachable, timeout, an error status, an answer it cannot read) is a
``ProviderError`` whose message is safe to show: it never holds the API key or the
provider's own body. Giphy is the one provider today (``giphy.GiphyProvider``);
Tenor or another follows by implementing the same two methods.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Protocol


@dataclass(frozen=True)
class Gif:
    id: str
    title: str
    url: str            # the animated image shown in a message
    preview_url: str    # a small (still or animated) image for the picker
    width: int
    height: int

    def to_json(self) -> dict:
        return asdict(self)


class ProviderError(Exception):
    """The provider failed; the message says how, without secrets."""


class GifProvider(Protocol):
    name: str

    async def search(self, query: str, limit: int, offset: int) -> list[Gif]: ...

    async def trending(self, limit: int, offset: int) -> list[Gif]: ...
