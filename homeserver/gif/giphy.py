"""Giphy's REST API v1: ``GET {base}/v1/gifs/search`` and ``/v1/gifs/trending``.

The API key and the rating go in the query string, as Giphy wants; that URL is never
logged nor put into an error message. Each result's ``images.fixed_height`` rendition
(200 px high) is the GIF shown in a message; ``fixed_height_small`` (100 px) is the
picker's preview, falling back to its still frame and then to ``fixed_height``.
"""

from __future__ import annotations

import json
from urllib.parse import urlencode

import treq
from twisted.internet import defer

from homeserver.gif.provider import Gif, ProviderError

MAX_ANSWER_BYTES = 4 * 1024 * 1024   # 50 results are ~100 KB; more is not an answer we want
_PREVIEWS = ("fixed_height_small", "fixed_height_small_still", "fixed_height_still", "fixed_height")
# Where Giphy serves the images (media0..4.giphy.com, i.giphy.com): the web client's
# Content-Security-Policy needs this in img-src.
MEDIA_ORIGINS = ("https://*.giphy.com",)


def _dimension(value) -> int:
    """Giphy gives sizes as strings ("200")."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        return 0
    return number if 0 < number < 100_000 else 0


def _https(value) -> str | None:
    return value if isinstance(value, str) and value.startswith("https://") and len(value) <= 2048 else None


def parse_gif(item) -> Gif | None:
    """One entry of ``data``, or None when it has no usable image (skipped, not an error)."""
    if not isinstance(item, dict) or not isinstance(item.get("id"), str) or not item["id"]:
        return None
    images = item.get("images")
    if not isinstance(images, dict):
        return None
    main = images.get("fixed_height")
    if not isinstance(main, dict) or _https(main.get("url")) is None:
        return None
    preview = next((_https(images[name].get("url")) for name in _PREVIEWS
                    if isinstance(images.get(name), dict) and _https(images[name].get("url"))), None)
    title = item.get("title")
    return Gif(id=item["id"][:128], title=(title if isinstance(title, str) else "")[:256], url=main["url"],
               preview_url=preview or main["url"], width=_dimension(main.get("width")),
               height=_dimension(main.get("height")))


def parse_answer(raw: bytes) -> list[Gif]:
    """Giphy's JSON answer (``{"data": [...], "pagination": ..., "meta": ...}``) as Gifs."""
    try:
        payload = json.loads(raw)
    except ValueError:
        raise ProviderError("Giphy sent an answer that is not JSON") from None
    data = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(data, list):
        raise ProviderError("Giphy sent an answer without a list of GIFs")
    return [gif for gif in map(parse_gif, data) if gif is not None]


def _deadline_passed(result, timeout):
    raise defer.TimeoutError(timeout)


class GiphyProvider:
    name = "giphy"

    def __init__(self, reactor, base_url: str, api_key: str, rating: str, timeout_secs: float):
        self._reactor = reactor
        self._base = base_url.rstrip("/")
        self._api_key = api_key
        self._rating = rating
        self._timeout = timeout_secs

    async def search(self, query: str, limit: int, offset: int) -> list[Gif]:
        return await self._get("search", {"q": query, "limit": limit, "offset": offset})

    async def trending(self, limit: int, offset: int) -> list[Gif]:
        return await self._get("trending", {"limit": limit, "offset": offset})

    async def _get(self, kind: str, params: dict) -> list[Gif]:
        query = urlencode({"api_key": self._api_key, **params, "rating": self._rating, "lang": "en"})
        fetching = defer.ensureDeferred(self._fetch(f"{self._base}/v1/gifs/{kind}?{query}"))
        # One deadline for connecting, the headers and the body together.
        # On expiry the cancelled request fails with treq's own error (ResponseNeverReceived
        # and the like); whatever it is, it was the deadline.
        fetching.addTimeout(self._timeout, self._reactor, onTimeoutCancel=_deadline_passed)
        try:
            code, raw = await fetching
        except ProviderError:
            raise
        except (defer.CancelledError, defer.TimeoutError):
            raise ProviderError(f"Giphy did not answer within {self._timeout:g} s") from None
        except Exception as error:  # connection errors come in many types; the URL is not shown
            raise ProviderError(f"Giphy could not be reached ({type(error).__name__})") from None
        if code != 200:
            # Giphy's error body may echo the request (and so the key): only the status is told.
            raise ProviderError(f"Giphy answered HTTP {code}")
        return parse_answer(raw)

    async def _fetch(self, url: str) -> tuple[int, bytes]:
        response = await treq.get(url, persistent=False, headers={"Accept": "application/json"})
        chunks: list[bytes] = []
        size = 0

        def collect(chunk: bytes) -> None:
            nonlocal size
            size += len(chunk)
            if size > MAX_ANSWER_BYTES:
                raise ProviderError("Giphy's answer is too large")
            chunks.append(chunk)
        await treq.collect(response, collect)
        return response.code, b"".join(chunks)
