"""Media of other servers: the interface a federation fetcher will implement.

The repository hands every request for a server name other than ours to a
``RemoteMediaSource``. Until federation media exists, ``NoRemoteMedia`` answers
404 M_NOT_FOUND. A fetcher would download from the origin (``/_matrix/federation/v1/
media/download``), cache the bytes through the same storage backends under
``remote_content/<server>/...``, and answer from the cache afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from homeserver.http.errors import not_found


@dataclass(frozen=True)
class MediaContent:
    """Bytes to serve, with what the uploader said about them."""
    data: bytes
    content_type: str
    upload_name: str | None


class RemoteMediaSource(Protocol):
    async def get_content(self, server_name: str, media_id: str, *, max_bytes: int,
                          timeout_ms: int) -> MediaContent:
        """The remote content, or a MatrixError (404 unknown, 502 M_TOO_LARGE, 504)."""

    async def get_thumbnail(self, server_name: str, media_id: str, *, width: int, height: int, method: str,
                            animated: bool, timeout_ms: int) -> MediaContent:
        """A thumbnail of remote content (made locally or asked of the origin)."""


class NoRemoteMedia:
    """No federation media yet: remote content is unknown."""

    async def get_content(self, server_name: str, media_id: str, *, max_bytes: int,
                          timeout_ms: int) -> MediaContent:
        raise not_found("Remote media is not available on this server")

    async def get_thumbnail(self, server_name: str, media_id: str, *, width: int, height: int, method: str,
                            animated: bool, timeout_ms: int) -> MediaContent:
        raise not_found("Remote media is not available on this server")
