"""The media repository: uploads, created-then-uploaded IDs, downloads and thumbnails.

Knows nothing of HTTP: the servlet (``homeserver.client.media``) parses requests and
builds responses; this module decides what is stored, what is served, and which Matrix
error a request earns.

Durability: bytes go to the storage backend first (durable when ``store`` returns),
then the row commits. A crash in between leaves an orphan file, never a row without
content, so a 200 means the content can be downloaded.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

from twisted.internet import defer, threads
from twisted.logger import Logger

from homeserver.http.errors import MatrixError, forbidden, invalid_param, not_found, too_large
from homeserver.locks import KeyedLock
from homeserver.media import thumbnails
from homeserver.media.remote import NoRemoteMedia, RemoteMediaSource
from homeserver.media.storage_backends import (MediaStorage, local_content_key, local_thumbnail_key,
                                               storage_from_config)
from storage.stores.media import LocalMedia, MediaStore, ThumbnailRecord

log = Logger(namespace="drocsid.media")

# A created ID lapses if nothing is uploaded to it within a day (the spec's default).
UNUSED_EXPIRY_MS = 24 * 3600 * 1000
# Created-but-unused IDs one user may hold at once (spec: 429 beyond).
MAX_PENDING_PER_USER = 50
# Downloads of created-but-not-uploaded media wait at most this long (timeout_ms).
DEFAULT_WAIT_MS = 20_000
MAX_WAIT_MS = 30_000
# While waiting, look at the database this often (uploads may land on another worker).
WAIT_POLL_SECONDS = 1.0
# Beyond this many cached thumbnails of one item, more sizes are made but not stored.
MAX_CACHED_THUMBNAILS = 32
# Thumbnails made at once (each may hold a decoded image in memory).
THUMBNAIL_CONCURRENCY = 4

# Rate limits; config.limits may define these keys, otherwise the defaults apply.
_RATE_DEFAULTS = {
    "media_upload_per_second": 5.0, "media_upload_burst": 50,
    "media_create_per_second": 2.0, "media_create_burst": 20,
}

MEDIA_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
_CONTENT_TYPE_PATTERN = re.compile(
    r"^[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+"
    r"""(\s*;\s*[A-Za-z0-9!#$&^_.+-]+=([A-Za-z0-9!#$&^_.+-]+|"[^"\\\x00-\x1f\x7f]*"))*\s*$""")
MAX_UPLOAD_NAME_LENGTH = 255
DEFAULT_CONTENT_TYPE = "application/octet-stream"
_THUMBNAIL_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/gif": "gif", "image/webp": "webp",
                         "image/apng": "png"}


def new_media_id() -> str:
    """24 URL-safe characters ([A-Za-z0-9_-]), 144 random bits."""
    return secrets.token_urlsafe(18)


def valid_media_id(media_id: str) -> bool:
    return bool(MEDIA_ID_PATTERN.match(media_id))


def clean_content_type(raw: str | None) -> str:
    """The uploader's Content-Type if well-formed, else application/octet-stream."""
    if not raw or len(raw) > 255 or not _CONTENT_TYPE_PATTERN.match(raw):
        return DEFAULT_CONTENT_TYPE
    media_type, sep, params = raw.partition(";")
    media_type = media_type.strip().lower()
    return f"{media_type};{params}" if sep else media_type


def clean_upload_name(raw: str | None) -> str | None:
    """The file name without control characters, at most 255 characters; None if empty."""
    if raw is None:
        return None
    cleaned = "".join(ch for ch in raw if ch.isprintable() or ch == " ")[:MAX_UPLOAD_NAME_LENGTH]
    return cleaned or None


@dataclass(frozen=True)
class ServedMedia:
    """What a download or thumbnail request gets."""
    data: bytes
    content_type: str
    filename: str | None
    is_thumbnail: bool = False


class MediaRepository:
    def __init__(self, config, db, clock, ratelimiter, *, storage: MediaStorage | None = None,
                 remote: RemoteMediaSource | None = None):
        self.server_name: str = config.server_name
        self.max_upload_bytes: int = config.media.max_upload_bytes
        self.store = MediaStore(db)
        self.storage: MediaStorage = storage if storage is not None else storage_from_config(config)
        # Federation replaces this with a fetcher; see homeserver.media.remote.
        self.remote: RemoteMediaSource = remote if remote is not None else NoRemoteMedia()
        self._clock = clock
        self._ratelimiter = ratelimiter
        self._rates = {key: getattr(config.limits, key, default) for key, default in _RATE_DEFAULTS.items()}
        self._upload_locks = KeyedLock()
        self._thumbnail_locks = KeyedLock()
        self._thumbnail_slots = defer.DeferredSemaphore(THUMBNAIL_CONCURRENCY)
        self._upload_waiters: dict[str, list[defer.Deferred]] = {}

    def mxc(self, media_id: str) -> str:
        return f"mxc://{self.server_name}/{media_id}"

    def config_json(self) -> dict:
        return {"m.upload.size": self.max_upload_bytes}

    # --- uploads -------------------------------------------------------------------------

    def _check_upload(self, user_id: str, data: bytes) -> None:
        if len(data) > self.max_upload_bytes:
            raise too_large(self.max_upload_bytes)
        self._ratelimiter.check("media_upload", user_id, self._rates["media_upload_per_second"],
                                self._rates["media_upload_burst"])

    async def upload(self, user_id: str, data: bytes, content_type: str | None,
                     upload_name: str | None) -> str:
        """POST /upload: store the bytes under a new ID; returns the mxc:// URI."""
        self._check_upload(user_id, data)
        content_type = clean_content_type(content_type)
        upload_name = clean_upload_name(upload_name)
        media_id = new_media_id()
        key = local_content_key(media_id)
        await self.storage.store(key, data, content_type)
        try:
            await self.store.insert_uploaded_media(media_id, user_id, self._clock.time_ms(), content_type,
                                                   upload_name, len(data), hashlib.sha256(data).hexdigest())
        except BaseException:
            await self._discard(key)
            raise
        log.info("stored {size} bytes as {media_id}", size=len(data), media_id=media_id, user=user_id,
                 event="media_uploaded")
        return self.mxc(media_id)

    async def create(self, user_id: str) -> tuple[str, int]:
        """POST /create: reserve an ID for a later upload; (mxc URI, unused_expires_at)."""
        self._ratelimiter.check("media_create", user_id, self._rates["media_create_per_second"],
                                self._rates["media_create_burst"])
        now = self._clock.time_ms()
        expires = now + UNUSED_EXPIRY_MS
        media_id = new_media_id()
        if not await self.store.create_pending_media(media_id, user_id, now, expires, MAX_PENDING_PER_USER):
            raise MatrixError(429, "M_LIMIT_EXCEEDED",
                              f"Too many pending uploads (at most {MAX_PENDING_PER_USER})")
        return self.mxc(media_id), expires

    async def upload_to(self, user_id: str, server_name: str, media_id: str, data: bytes,
                        content_type: str | None, upload_name: str | None) -> None:
        """PUT /upload/{serverName}/{mediaId}: the content of an ID made by create()."""
        if server_name != self.server_name or not valid_media_id(media_id):
            raise not_found("Unknown media ID")
        self._check_upload(user_id, data)
        content_type = clean_content_type(content_type)
        upload_name = clean_upload_name(upload_name)
        async with self._upload_locks.hold(media_id):
            media = await self.store.get_local_media(media_id)
            self._check_can_fill(media, user_id, self._clock.time_ms())
            await self.storage.store(local_content_key(media_id), data, content_type)
            done = await self.store.complete_pending_upload(
                media_id, user_id, self._clock.time_ms(), content_type, upload_name, len(data),
                hashlib.sha256(data).hexdigest())
            if not done:
                # Another worker filled it first, or it lapsed meanwhile.
                self._check_can_fill(await self.store.get_local_media(media_id), user_id, self._clock.time_ms())
                raise MatrixError(409, "M_CANNOT_OVERWRITE_MEDIA", "Media already uploaded")
        self._wake_waiters(media_id)

    @staticmethod
    def _check_can_fill(media: LocalMedia | None, user_id: str, now: int) -> None:
        if media is None:
            raise not_found("Unknown media ID")
        if media.uploader != user_id:
            raise forbidden("This media ID was created by another user")
        if media.uploaded:
            raise MatrixError(409, "M_CANNOT_OVERWRITE_MEDIA", "Media already uploaded")
        if media.unused_expires_ts is not None and media.unused_expires_ts <= now:
            raise not_found("This media ID has expired")

    async def _discard(self, key: str) -> None:
        try:
            await self.storage.delete(key)
        except Exception:
            log.failure("could not remove orphaned media {key}", key=key)

    # --- downloads -----------------------------------------------------------------------

    async def get_content(self, server_name: str, media_id: str, *, allow_remote: bool = True,
                          timeout_ms: int | None = None) -> ServedMedia:
        timeout_ms = self._wait_ms(timeout_ms)
        if server_name != self.server_name:
            if not allow_remote:
                raise not_found("Remote media is not fetched for this request")
            content = await self.remote.get_content(server_name, media_id, max_bytes=self.max_upload_bytes,
                                                    timeout_ms=timeout_ms)
            return ServedMedia(content.data, content.content_type, content.upload_name)
        media = await self._uploaded_media(media_id, timeout_ms)
        data = await self._original_bytes(media)
        return ServedMedia(data, media.content_type or DEFAULT_CONTENT_TYPE, media.upload_name)

    async def _original_bytes(self, media: LocalMedia) -> bytes:
        data = await self.storage.fetch(local_content_key(media.media_id))
        if data is None:
            log.error("media {media_id} has a row but no bytes in the {backend} store",
                      media_id=media.media_id, backend=self.storage.name)
            raise not_found("Media content is missing")
        return data

    @staticmethod
    def _wait_ms(timeout_ms: int | None) -> int:
        if timeout_ms is None:
            return DEFAULT_WAIT_MS
        return max(0, min(timeout_ms, MAX_WAIT_MS))

    async def _uploaded_media(self, media_id: str, timeout_ms: int) -> LocalMedia:
        """The row of uploaded local media; waits up to ``timeout_ms`` for a created ID."""
        if not valid_media_id(media_id):
            raise not_found("Unknown media ID")
        deadline = self._clock.time_ms() + timeout_ms
        while True:
            media = await self.store.get_local_media(media_id)
            now = self._clock.time_ms()
            if media is None:
                raise not_found("Unknown media ID")
            if media.uploaded:
                return media
            if media.unused_expires_ts is not None and media.unused_expires_ts <= now:
                raise not_found("Unknown media ID")
            remaining = deadline - now
            if remaining <= 0:
                raise MatrixError(504, "M_NOT_YET_UPLOADED", "Content has not yet been uploaded")
            await self._wait_for_upload(media_id, min(remaining / 1000, WAIT_POLL_SECONDS))

    async def _wait_for_upload(self, media_id: str, seconds: float) -> None:
        waiter: defer.Deferred = defer.Deferred()
        self._upload_waiters.setdefault(media_id, []).append(waiter)

        def wake():
            if not waiter.called:
                waiter.callback(None)
        timer = self._clock.call_later(seconds, wake)
        try:
            await waiter
        finally:
            if timer.active():
                timer.cancel()
            waiting = self._upload_waiters.get(media_id)
            if waiting is not None:
                if waiter in waiting:
                    waiting.remove(waiter)
                if not waiting:
                    del self._upload_waiters[media_id]

    def _wake_waiters(self, media_id: str) -> None:
        for waiter in list(self._upload_waiters.get(media_id, ())):
            if not waiter.called:
                waiter.callback(None)

    # --- thumbnails ----------------------------------------------------------------------

    async def get_thumbnail(self, server_name: str, media_id: str, *, width: int, height: int, method: str,
                            animated: bool = False, allow_remote: bool = True,
                            timeout_ms: int | None = None) -> ServedMedia:
        if method not in thumbnails.METHODS:
            raise invalid_param("'method' must be crop or scale")
        for name, value in (("width", width), ("height", height)):
            if not 1 <= value <= thumbnails.MAX_REQUEST_SIDE:
                raise invalid_param(f"'{name}' must be between 1 and {thumbnails.MAX_REQUEST_SIDE}")
        timeout_ms = self._wait_ms(timeout_ms)
        if server_name != self.server_name:
            if not allow_remote:
                raise not_found("Remote media is not fetched for this request")
            content = await self.remote.get_thumbnail(server_name, media_id, width=width, height=height,
                                                      method=method, animated=animated, timeout_ms=timeout_ms)
            return ServedMedia(content.data, content.content_type, content.upload_name, is_thumbnail=True)

        media = await self._uploaded_media(media_id, timeout_ms)
        if not thumbnails.can_thumbnail(media.content_type):
            raise MatrixError(400, "M_UNKNOWN", "Cannot generate thumbnails for the requested content")
        if thumbnails.base_type(media.content_type) not in ("image/gif", "image/webp", "image/png", "image/apng"):
            animated = False  # cannot be animated: one cached thumbnail serves both requests
        box = thumbnails.choose_box(width, height, method, animated)

        cached = await self._cached_thumbnail(media_id, box)
        if cached is not None:
            return cached
        async with self._thumbnail_locks.hold((media_id, box)):
            # Whoever held the lock before may have made it.
            cached = await self._cached_thumbnail(media_id, box)
            if cached is not None:
                return cached
            original = await self._original_bytes(media)
            made = await self._make(original, media.content_type, box)
            if made is None:  # smaller than asked: the original is the thumbnail
                return ServedMedia(original, thumbnails.base_type(media.content_type),
                                   self._thumbnail_name(media.content_type), is_thumbnail=True)
            await self._cache_thumbnail(media_id, box, made)
            return ServedMedia(made.data, made.content_type, self._thumbnail_name(made.content_type),
                               is_thumbnail=True)

    async def _make(self, original: bytes, content_type: str | None, box: thumbnails.Box):
        try:
            return await self._thumbnail_slots.run(threads.deferToThread, thumbnails.make_thumbnail,
                                                   original, content_type, box)
        except thumbnails.SourceTooLarge:
            raise MatrixError(413, "M_TOO_LARGE", "Content is too large to thumbnail") from None
        except thumbnails.ThumbnailError as error:
            log.info("cannot thumbnail: {error}", error=str(error))
            raise MatrixError(400, "M_UNKNOWN", "Cannot generate thumbnails for the requested content") from None

    async def _cached_thumbnail(self, media_id: str, box: thumbnails.Box) -> ServedMedia | None:
        record = await self.store.get_thumbnail(media_id, box.width, box.height, box.method, box.animated)
        if record is None:
            return None
        data = await self.storage.fetch(local_thumbnail_key(media_id, box.width, box.height, box.method,
                                                            box.animated))
        if data is None:
            return None  # lost from the store: make it again
        return ServedMedia(data, record.content_type, self._thumbnail_name(record.content_type), is_thumbnail=True)

    async def _cache_thumbnail(self, media_id: str, box: thumbnails.Box, made: thumbnails.Thumbnail) -> None:
        if await self.store.count_thumbnails(media_id) >= MAX_CACHED_THUMBNAILS:
            return
        try:
            await self.storage.store(local_thumbnail_key(media_id, box.width, box.height, box.method, box.animated),
                                     made.data, made.content_type)
            await self.store.insert_thumbnail(ThumbnailRecord(
                media_id, box.width, box.height, box.method, box.animated, made.content_type, len(made.data),
                self._clock.time_ms()))
        except Exception:
            # The thumbnail is made; failing to keep it only costs making it again.
            log.failure("could not cache a thumbnail of {media_id}", media_id=media_id)

    @staticmethod
    def _thumbnail_name(content_type: str | None) -> str:
        return f"thumbnail.{_THUMBNAIL_EXTENSIONS.get(thumbnails.base_type(content_type), 'png')}"
