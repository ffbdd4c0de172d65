"""The GIF service the routes call: configuration, per-user rate limit, cache, errors.

- Disabled (``gif.api_key`` empty): every call is 404 M_NOT_FOUND "GIF search is not
  configured on this server" (the feature does not exist here, as with an unknown route;
  the original answered 400).
- Each call counts against the user's ``gif`` bucket (``gif.per_user_per_second`` /
  ``gif.burst``), cache hits included: 429 M_LIMIT_EXCEEDED with ``retry_after_ms``.
- Successful provider answers are kept ``gif.cache_ttl_secs`` in memory, keyed by
  (kind, query, limit, offset, rating), least recently used dropped beyond
  ``MAX_CACHE_ENTRIES``. A failure (unreachable, timeout, error status, unreadable
  answer) is 502 M_UNKNOWN with a message naming the provider and the cause, and
  nothing is cached, so the next identical call asks the provider again.
"""

from __future__ import annotations

import logging
from collections import OrderedDict

from homeserver.gif.provider import Gif, GifProvider, ProviderError
from homeserver.http.errors import MatrixError

logger = logging.getLogger(__name__)

MAX_CACHE_ENTRIES = 1000
_RATE_ACTION = "gif"


class TtlLruCache:
    """A bounded map whose entries expire; time comes from ``clock.time()``."""

    def __init__(self, clock, ttl_secs: float, max_entries: int = MAX_CACHE_ENTRIES):
        self._clock = clock
        self._ttl = ttl_secs
        self._max = max_entries
        self._entries: OrderedDict[tuple, tuple[float, object]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: tuple):
        found = self._entries.get(key)
        if found is None:
            return None
        expires, value = found
        if self._clock.time() >= expires:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return value

    def put(self, key: tuple, value) -> None:
        if self._ttl <= 0:
            return
        self._entries[key] = (self._clock.time() + self._ttl, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)


def not_configured() -> MatrixError:
    return MatrixError(404, "M_NOT_FOUND", "GIF search is not configured on this server")


def make_provider(settings, reactor) -> GifProvider | None:
    """The configured provider, or None when GIF search is off (no API key)."""
    if not settings.api_key:
        return None
    if settings.provider == "giphy":
        from homeserver.gif.giphy import GiphyProvider
        return GiphyProvider(reactor, settings.base_url, settings.api_key, settings.rating, settings.timeout_secs)
    raise ValueError(f"unknown GIF provider {settings.provider!r}")  # config validation stops this first


def media_origins(settings) -> tuple[str, ...]:
    """img-src sources the web client needs for the configured provider's images."""
    if not settings.api_key:
        return ()
    from homeserver.gif.giphy import MEDIA_ORIGINS
    return MEDIA_ORIGINS


class GifService:
    def __init__(self, settings, clock, ratelimiter, provider: GifProvider | None):
        self._settings = settings
        self._ratelimiter = ratelimiter
        self.provider = provider
        self.cache = TtlLruCache(clock, settings.cache_ttl_secs)

    @property
    def enabled(self) -> bool:
        return self.provider is not None

    @property
    def provider_name(self) -> str:
        return self.provider.name if self.provider is not None else self._settings.provider

    async def search(self, user_id: str, query: str, limit: int, offset: int, *, limited: bool = True) -> list[Gif]:
        return await self._answer(user_id, limited, ("search", query, limit, offset),
                                  lambda provider: provider.search(query, limit, offset))

    async def trending(self, user_id: str, limit: int, offset: int, *, limited: bool = True) -> list[Gif]:
        return await self._answer(user_id, limited, ("trending", "", limit, offset),
                                  lambda provider: provider.trending(limit, offset))

    async def _answer(self, user_id: str, limited: bool, key: tuple, ask) -> list[Gif]:
        provider = self.provider
        if provider is None:
            raise not_configured()
        if limited:
            self._ratelimiter.check(_RATE_ACTION, user_id, self._settings.per_user_per_second, self._settings.burst)
        key = key + (self._settings.rating,)
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        try:
            results = await ask(provider)
        except ProviderError as error:
            # The message is the provider's own safe summary; no key, no URL, no body.
            logger.warning("GIF %s failed: %s", key[0], error)
            raise MatrixError(502, "M_UNKNOWN", f"The GIF provider failed: {error}") from None
        self.cache.put(key, results)
        return results
