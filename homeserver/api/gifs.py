"""GIF search through the server (issue 9; docs/gif.md): ``GET /gifs/search`` and
``GET /gifs/trending`` proxy the configured provider (Giphy) so that the API key stays
on the server. The service (``homeserver.gif.service``) caches, rate limits per user
and turns provider failures into 502.
"""

from __future__ import annotations

from homeserver.api.routes import ApiCall, ApiRoutes
from homeserver.gif.service import GifService, make_provider
from homeserver.http.errors import invalid_param
from homeserver.http.request import query_int, query_str

DEFAULT_LIMIT = 25
MAX_LIMIT = 50
MAX_QUERY = 100
MAX_OFFSET = 4999   # Giphy's own ceiling for offset

GIF_SCHEMA = {
    "type": "object",
    "required": ["id", "title", "url", "preview_url", "width", "height"],
    "properties": {
        "id": {"type": "string", "description": "The provider's ID"},
        "title": {"type": "string", "description": "May be empty; the picker's accessible name"},
        "url": {"type": "string", "format": "uri", "description": "The animated image (https)"},
        "preview_url": {"type": "string", "format": "uri", "description": "A smaller image for the picker (https)"},
        "width": {"type": "integer", "description": "Of 'url', in pixels; 0 if unknown"},
        "height": {"type": "integer", "description": "Of 'url', in pixels; 0 if unknown"},
    },
}


def _page(request) -> tuple[int, int]:
    limit = query_int(request, "limit", DEFAULT_LIMIT, minimum=1)
    if limit > MAX_LIMIT:
        raise invalid_param(f"Query parameter 'limit' must be at most {MAX_LIMIT}")
    offset = query_int(request, "offset", 0, minimum=0)
    if offset > MAX_OFFSET:
        raise invalid_param(f"Query parameter 'offset' must be at most {MAX_OFFSET}")
    return limit, offset


def register(api: ApiRoutes, hs) -> None:
    settings = hs.config.gif
    service = GifService(settings, hs.clock, hs.ratelimiter, make_provider(settings, hs.reactor))
    results_ref = api.schema("GifResults", {
        "type": "object", "required": ["results", "provider"],
        "properties": {"results": {"type": "array", "items": api.schema("Gif", GIF_SCHEMA)},
                       "provider": {"type": "string", "enum": ["giphy"]}},
    })

    def answer(gifs) -> tuple[int, dict]:
        return 200, {"results": [gif.to_json() for gif in gifs], "provider": service.provider_name}

    async def search(call: ApiCall):
        query = (query_str(call.request, "q") or "").strip()
        if not query:
            raise invalid_param("Query parameter 'q' must not be empty")
        if len(query) > MAX_QUERY:
            raise invalid_param(f"Query parameter 'q' must be at most {MAX_QUERY} characters")
        limit, offset = _page(call.request)
        return answer(await service.search(call.requester.user_id, query, limit, offset,
                                           limited=call.requester.rate_limited))

    async def trending(call: ApiCall):
        limit, offset = _page(call.request)
        return answer(await service.trending(call.requester.user_id, limit, offset,
                                             limited=call.requester.rate_limited))

    common = ("Proxied to the configured provider; its API key never reaches the client. "
              f"'limit' 1-{MAX_LIMIT} (default {DEFAULT_LIMIT}), 'offset' 0-{MAX_OFFSET}. "
              "Not configured (gif.api_key empty): 404 M_NOT_FOUND. Provider failure or timeout: "
              "502 M_UNKNOWN (nothing cached). Rate limited per user (gif.per_user_per_second / gif.burst): "
              "429 M_LIMIT_EXCEEDED with retry_after_ms. Answers are cached for gif.cache_ttl_secs.")
    api.add("GET", "/gifs/search", search, tag="gifs", summary="Search GIFs", response=results_ref,
            rate_limited=True, description=f"'q' (1-{MAX_QUERY} characters) is required. " + common)
    api.add("GET", "/gifs/trending", trending, tag="gifs", summary="Trending GIFs", response=results_ref,
            rate_limited=True, description=common)
