"""Media of other servers.

The repository hands every request for a server name other than ours to a
``RemoteMediaSource``. Without federation, ``NoRemoteMedia`` answers 404 M_NOT_FOUND.
With it, ``FederationMediaSource`` downloads from the origin and keeps a copy:

- ``GET /_matrix/federation/v1/media/download/{mediaId}`` (signed; a ``multipart/mixed``
  answer: JSON metadata, then the bytes), falling back to the older
  ``/_matrix/media/v3/download/{serverName}/{mediaId}?allow_remote=false`` when the
  origin answers 404 M_UNRECOGNIZED (or 405/400 M_UNRECOGNIZED: it lacks the endpoint).
  Thumbnails likewise, through ``.../media/thumbnail/{mediaId}``.
- The copy goes to the same storage backend as local media, under
  ``remote_content/<server>/<shard of the ID>`` with a small JSON file next to it
  holding the Content-Type and file name (``.meta``, written after the bytes, so a copy
  with metadata is complete). Later requests are answered from it. Remote media never
  changes (an ID names the same bytes forever), so the copy never goes stale.
- Content larger than ``media.max_upload_bytes`` is refused (502 M_TOO_LARGE) and not
  kept. Concurrent requests for the same item wait for one download.
- A ``Location`` part (content the origin keeps elsewhere) is not followed: 502.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote, unquote

from twisted.logger import Logger

from homeserver.http.errors import MatrixError, not_found
from homeserver.locks import KeyedLock
from homeserver.media import multipart

log = Logger(namespace="drocsid.media.remote")

MEDIA_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
# Room for the multipart framing around the content.
MULTIPART_OVERHEAD = 64 * 1024
MAX_METADATA_BYTES = 64 * 1024


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
    """No federation: remote content is unknown."""

    async def get_content(self, server_name: str, media_id: str, *, max_bytes: int,
                          timeout_ms: int) -> MediaContent:
        raise not_found("Remote media is not available on this server")

    async def get_thumbnail(self, server_name: str, media_id: str, *, width: int, height: int, method: str,
                            animated: bool, timeout_ms: int) -> MediaContent:
        raise not_found("Remote media is not available on this server")


# --- cache keys ---------------------------------------------------------------------------

def _server_segment(server_name: str) -> str:
    """A path segment naming the server: [A-Za-z0-9.-] as they are, anything else (the
    port's ':', IPv6 brackets) as _xx; '_' never occurs in server names, so this is
    one-to-one."""
    return "".join(ch if ch.isascii() and (ch.isalnum() or ch in ".-") else f"_{ord(ch):02x}"
                   for ch in server_name)


def _shard(media_id: str) -> str:
    return f"{media_id[0:2]}/{media_id[2:4]}/{media_id[4:] or '_'}"


def remote_content_key(server_name: str, media_id: str) -> str:
    return f"remote_content/{_server_segment(server_name)}/{_shard(media_id)}"


def remote_thumbnail_key(server_name: str, media_id: str, width: int, height: int, method: str,
                         animated: bool) -> str:
    suffix = "-animated" if animated else ""
    return f"remote_thumbnails/{_server_segment(server_name)}/{_shard(media_id)}/{width}-{height}-{method}{suffix}"


def _unrecognized(error: Exception) -> bool:
    """The origin lacks the endpoint (so: try the older one)."""
    return getattr(error, "errcode", None) == "M_UNRECOGNIZED" and getattr(error, "status", None) in (400, 404, 405)


class FederationMediaSource:
    def __init__(self, client, storage, server_name: str, max_bytes: int):
        self._client = client
        self._storage = storage
        self._server_name = server_name
        self._max_bytes = max_bytes  # for thumbnails (downloads say theirs)
        self._locks = KeyedLock()

    async def get_content(self, server_name: str, media_id: str, *, max_bytes: int,
                          timeout_ms: int) -> MediaContent:
        self._check(server_name, media_id)
        key = remote_content_key(server_name, media_id)
        cached = await self._cached(key)
        if cached is not None:
            return cached
        async with self._locks.hold(key):
            cached = await self._cached(key)  # fetched while we waited
            if cached is not None:
                return cached
            quoted = quote(media_id, safe="")
            content = await self._fetch(
                server_name, f"/_matrix/federation/v1/media/download/{quoted}",
                f"/_matrix/media/v3/download/{quote(server_name, safe='')}/{quoted}",
                {"timeout_ms": timeout_ms}, max_bytes, timeout_ms)
            await self._keep(key, content)
            log.info("fetched {size} bytes of mxc://{server}/{media_id}", size=len(content.data),
                     server=server_name, media_id=media_id, event="remote_media_fetched")
            return content

    async def get_thumbnail(self, server_name: str, media_id: str, *, width: int, height: int, method: str,
                            animated: bool, timeout_ms: int) -> MediaContent:
        self._check(server_name, media_id)
        key = remote_thumbnail_key(server_name, media_id, width, height, method, animated)
        cached = await self._cached(key)
        if cached is not None:
            return cached
        async with self._locks.hold(key):
            cached = await self._cached(key)
            if cached is not None:
                return cached
            quoted = quote(media_id, safe="")
            query = {"width": width, "height": height, "method": method, "animated": animated,
                     "timeout_ms": timeout_ms}
            content = await self._fetch(
                server_name, f"/_matrix/federation/v1/media/thumbnail/{quoted}",
                f"/_matrix/media/v3/thumbnail/{quote(server_name, safe='')}/{quoted}",
                query, self._max_bytes, timeout_ms)
            await self._keep(key, content)
            return content

    # --- internals ---------------------------------------------------------------------

    def _check(self, server_name: str, media_id: str) -> None:
        if not MEDIA_ID_PATTERN.match(media_id) or not server_name or server_name == self._server_name:
            raise not_found("Unknown media ID")

    async def _fetch(self, server_name: str, path: str, legacy_path: str, query: dict, max_bytes: int,
                     timeout_ms: int) -> MediaContent:
        # The origin may itself wait for an upload for timeout_ms; allow for that.
        timeout = 30.0 + timeout_ms / 1000
        try:
            headers, body = await self._client.get_bytes(server_name, path, query,
                                                         max_bytes=max_bytes + MULTIPART_OVERHEAD, timeout=timeout)
            content = self._from_multipart(server_name, headers, body)
        except Exception as error:
            if not _unrecognized(error):
                raise self._error(server_name, error, max_bytes) from None
            try:
                headers, body = await self._client.get_bytes(server_name, legacy_path,
                                                             {**query, "allow_remote": False},
                                                             max_bytes=max_bytes, timeout=timeout)
            except Exception as legacy_error:
                raise self._error(server_name, legacy_error, max_bytes) from None
            content = MediaContent(body, _content_type(headers.get("content-type")),
                                   _filename(headers.get("content-disposition")))
        if len(content.data) > max_bytes:
            raise MatrixError(502, "M_TOO_LARGE", f"The remote content is larger than {max_bytes} bytes")
        return content

    @staticmethod
    def _from_multipart(server_name: str, headers: dict[str, str], body: bytes) -> MediaContent:
        try:
            parts = multipart.parse(body, headers.get("content-type"))
        except multipart.MultipartError as error:
            raise MatrixError(502, "M_UNKNOWN", f"{server_name} sent an unreadable media answer: {error}") from None
        if len(parts) < 2:
            raise MatrixError(502, "M_UNKNOWN", f"{server_name} sent a media answer without content")
        part_headers, data = parts[1]
        if "location" in part_headers and not data:
            raise MatrixError(502, "M_UNKNOWN", f"{server_name} keeps this media elsewhere (a redirect), "
                                                "which is not followed")
        return MediaContent(data, _content_type(part_headers.get("content-type")),
                            _filename(part_headers.get("content-disposition")))

    @staticmethod
    def _error(server_name: str, error: Exception, max_bytes: int) -> MatrixError:
        if isinstance(error, MatrixError):
            return error
        status = getattr(error, "status", None)
        if status == 404:
            return not_found("Remote media not found")
        if status == 504 or getattr(error, "errcode", None) == "M_NOT_YET_UPLOADED":
            return MatrixError(504, "M_NOT_YET_UPLOADED", "The remote content has not been uploaded yet")
        reason = str(getattr(error, "reason", "") or error)
        if "larger than" in reason:
            return MatrixError(502, "M_TOO_LARGE", f"The remote content is larger than {max_bytes} bytes")
        if status is None and "no response within" in reason:
            return MatrixError(504, "M_UNKNOWN", f"{server_name} did not answer in time")
        return MatrixError(502, "M_UNKNOWN", f"Could not get the media from {server_name}: {error}")

    async def _cached(self, key: str) -> MediaContent | None:
        try:
            raw_meta = await self._storage.fetch(key + ".meta")
            if raw_meta is None:
                return None
            meta = json.loads(raw_meta)
            data = await self._storage.fetch(key)
        except Exception:
            log.failure("reading cached remote media {key} failed", key=key)
            return None
        if data is None or not isinstance(meta, dict):
            return None
        content_type = meta.get("content_type")
        name = meta.get("upload_name")
        return MediaContent(data, content_type if isinstance(content_type, str) else "application/octet-stream",
                            name if isinstance(name, str) else None)

    async def _keep(self, key: str, content: MediaContent) -> None:
        """Store the copy; failing to only costs fetching it again."""
        meta: dict[str, Any] = {"content_type": content.content_type, "upload_name": content.upload_name,
                                "size": len(content.data)}
        try:
            await self._storage.store(key, content.data, content.content_type)
            await self._storage.store(key + ".meta", json.dumps(meta).encode("utf-8"), "application/json")
        except Exception:
            log.failure("could not keep a copy of remote media {key}", key=key)


def _content_type(raw: str | None) -> str:
    from homeserver.media.repository import clean_content_type  # (it imports this module)
    return clean_content_type(raw)


_FILENAME_STAR = re.compile(r"filename\*\s*=\s*([^']*)'[^']*'([^;]+)", re.IGNORECASE)
_FILENAME = re.compile(r'filename\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]+))', re.IGNORECASE)


def _filename(disposition: str | None) -> str | None:
    """The file name of a Content-Disposition header, if any."""
    if not disposition:
        return None
    from homeserver.media.repository import clean_upload_name  # (it imports this module)
    found = _FILENAME_STAR.search(disposition)
    if found is not None:
        try:
            return clean_upload_name(unquote(found.group(2).strip(), encoding=found.group(1) or "utf-8",
                                             errors="replace"))
        except LookupError:
            return None
    found = _FILENAME.search(disposition)
    if found is not None:
        name = found.group(1) if found.group(1) is not None else found.group(2)
        return clean_upload_name(re.sub(r"\\(.)", r"\1", name))
    return None
