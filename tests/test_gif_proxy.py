"""GIF search through the server (docs/gif.md) against a local stand-in for Giphy: a
Twisted web server on 127.0.0.1 that records each request and answers in Giphy's shape,
or fails as told (HTTP 500, a body that is not JSON, no answer at all).

Shown: the key and the rating reach the provider and never the client; identical calls
are served from the cache; provider failures are 502 with nothing cached; per-user rate
limit; authentication; parameter checks; the not-configured answer. On SQLite and
PostgreSQL (accounts live in the database; the GIF code itself keeps nothing there).
"""

from __future__ import annotations

import json
import os
from urllib.parse import parse_qs, urlencode

import treq
from twisted.internet import defer, reactor, task
from twisted.trial import unittest
from twisted.web import resource, server

from homeserver.config import ConfigError, load_config
from homeserver.gif.giphy import parse_answer
from homeserver.gif.provider import ProviderError
from homeserver.gif.service import TtlLruCache
from tests.support.api import API, ApiHelpers
from tests.support.server import HomeserverTestCase, inline, write_config
from tests.test_web_client import PASSWORD, BrowserTestCase

API_KEY = "giphy-secret-key-0123456789abcdef"


def giphy_item(number: int) -> dict:
    """One entry of Giphy's ``data`` (sizes are strings, as Giphy sends them)."""
    base = f"https://media{number % 5}.giphy.com/media/gif{number}"
    return {
        "type": "gif", "id": f"gif{number}", "title": f"Funny cat {number}",
        "url": f"https://giphy.com/gifs/gif{number}",
        "images": {
            "original": {"url": f"{base}/giphy.gif", "width": "480", "height": "360"},
            "fixed_height": {"url": f"{base}/200.gif", "width": "267", "height": "200",
                             "webp": f"{base}/200.webp", "mp4": f"{base}/200.mp4"},
            "fixed_height_small": {"url": f"{base}/100.gif", "width": "133", "height": "100"},
            "fixed_height_small_still": {"url": f"{base}/100_s.gif", "width": "133", "height": "100"},
        },
    }


class _GiphyResource(resource.Resource):
    isLeaf = True

    def __init__(self, fake: "FakeGiphy"):
        super().__init__()
        self._fake = fake

    def render_GET(self, request):
        args = {k.decode(): v[0].decode() for k, v in parse_qs(request.uri.split(b"?", 1)[-1]).items()} \
            if b"?" in request.uri else {}
        self._fake.requests.append({"path": request.path.decode(), "args": args})
        mode = self._fake.mode
        if mode == "hang":
            self._fake.hanging.append(request)
            return server.NOT_DONE_YET
        request.setHeader(b"Content-Type", b"application/json")
        if mode == "error" or args.get("q") == "boom":  # "boom": the browser test's failing search
            request.setResponseCode(500)
            # A real error body may echo the request; the server must not pass it on.
            return json.dumps({"message": f"boom for key {args.get('api_key')}"}).encode()
        if mode == "not_json":
            return b"<html>Bad gateway</html>"
        if request.path not in (b"/v1/gifs/search", b"/v1/gifs/trending"):
            request.setResponseCode(404)
            return b'{"message": "not found"}'
        limit, offset = int(args.get("limit", 25)), int(args.get("offset", 0))
        data = [giphy_item(n) for n in range(offset, offset + limit)]
        return json.dumps({"data": data, "pagination": {"total_count": 1000, "count": limit, "offset": offset},
                           "meta": {"status": 200, "msg": "OK"}}).encode()


class FakeGiphy:
    """``mode``: "ok", "error" (HTTP 500), "not_json", "hang" (never answers)."""

    def __init__(self):
        self.requests: list[dict] = []
        self.mode = "ok"
        self.hanging: list = []
        self._port = reactor.listenTCP(0, server.Site(_GiphyResource(self)), interface="127.0.0.1")
        self.url = f"http://127.0.0.1:{self._port.getHost().port}"

    async def close_port(self) -> None:
        """The provider is down: connections are refused."""
        if self._port is not None:
            port, self._port = self._port, None
            await port.stopListening()

    async def stop(self) -> None:
        for request in self.hanging:
            if not request._disconnected:
                request.channel.transport.abortConnection()
        await self.close_port()


def _settings(base_url: str, **extra) -> dict:
    return {"gif": {"api_key": API_KEY, "base_url": base_url, "rating": "g", "timeout_secs": 1.0, **extra}}


class GifTestCase(ApiHelpers, HomeserverTestCase):
    gif_overrides: dict = {}

    @inline
    async def setUp(self):
        self.giphy = FakeGiphy()
        self.addCleanup(lambda: defer.ensureDeferred(self.giphy.stop()))
        self.config_overrides = _settings(self.giphy.url, **self.gif_overrides)
        await HomeserverTestCase.setUp(self)
        self.alice, self.token = await self.user("alice")

    async def raw_get(self, path: str, query: dict | None = None, token: str | None = None) -> tuple[int, bytes, dict]:
        url = self.client.base_url + API + path + ("?" + urlencode(query) if query else "")
        headers = {"Authorization": [f"Bearer {token or self.token}"]}
        response = await treq.get(url, headers=headers, pool=self.client.pool)
        body = await response.content()
        header_text = repr(list(response.headers.getAllRawHeaders()))
        return response.code, body, header_text

    async def gifs(self, kind: str, **query):
        return await self.request("GET", f"{API}/gifs/{kind}", query=query or None, token=self.token)


class GifProxyTests:

    @inline
    async def test_search_sends_key_and_rating_to_giphy_only(self):
        status, raw, headers = await self.raw_get("/gifs/search", {"q": "cats", "limit": 3, "offset": 6})
        self.assertEqual(status, 200, raw)
        self.assertEqual(len(self.giphy.requests), 1)
        sent = self.giphy.requests[0]
        self.assertEqual(sent["path"], "/v1/gifs/search")
        self.assertEqual(sent["args"]["api_key"], API_KEY)
        self.assertEqual(sent["args"]["rating"], "g")
        self.assertEqual((sent["args"]["q"], sent["args"]["limit"], sent["args"]["offset"]), ("cats", "3", "6"))
        # Nothing the client receives holds the key.
        self.assertNotIn(API_KEY.encode(), raw)
        self.assertNotIn(API_KEY, headers)
        body = json.loads(raw)
        self.assertEqual(body["provider"], "giphy")
        self.assertEqual([g["id"] for g in body["results"]], ["gif6", "gif7", "gif8"])
        self.assertEqual(body["results"][0], {
            "id": "gif6", "title": "Funny cat 6", "url": "https://media1.giphy.com/media/gif6/200.gif",
            "preview_url": "https://media1.giphy.com/media/gif6/100.gif", "width": 267, "height": 200})

    @inline
    async def test_trending(self):
        status, body = await self.gifs("trending")
        self.assertEqual(status, 200, body)
        self.assertEqual(len(body["results"]), 25)  # the default limit
        sent = self.giphy.requests[0]
        self.assertEqual(sent["path"], "/v1/gifs/trending")
        self.assertNotIn("q", sent["args"])
        self.assertEqual((sent["args"]["api_key"], sent["args"]["rating"], sent["args"]["limit"]),
                         (API_KEY, "g", "25"))

    @inline
    async def test_identical_calls_are_served_from_cache(self):
        first = await self.gifs("search", q="cats", limit=5)
        second = await self.gifs("search", q="cats", limit=5)
        self.assertEqual(first, second)
        self.assertEqual(len(self.giphy.requests), 1)
        # Another user's identical search is served from the same cache.
        _bob, bob_token = await self.user("bob")
        status, _ = await self.request("GET", f"{API}/gifs/search", query={"q": "cats", "limit": 5}, token=bob_token)
        self.assertEqual(status, 200)
        self.assertEqual(len(self.giphy.requests), 1)
        # Anything different in the key goes to the provider.
        await self.gifs("search", q="cats", limit=5, offset=5)
        await self.gifs("search", q="dogs", limit=5)
        await self.gifs("trending", limit=5)
        await self.gifs("trending", limit=5)
        self.assertEqual([r["path"] for r in self.giphy.requests],
                         ["/v1/gifs/search"] * 3 + ["/v1/gifs/trending"])

    async def _failure_then_success(self, mode: str, message: str):
        self.giphy.mode = mode
        status, raw, _ = await self.raw_get("/gifs/search", {"q": "cats"})
        self.assertEqual(status, 502, raw)
        body = json.loads(raw)
        self.assertEqual(body["errcode"], "M_UNKNOWN")
        self.assertIn(message, body["error"])
        self.assertNotIn(API_KEY.encode(), raw)
        self.assertEqual(len(self.giphy.requests), 1)
        # Nothing was cached: the same call goes to the provider again, and now succeeds.
        self.giphy.mode = "ok"
        status, body = await self.gifs("search", q="cats")
        self.assertEqual(status, 200, body)
        self.assertEqual(len(body["results"]), 25)
        self.assertEqual(len(self.giphy.requests), 2)

    @inline
    async def test_provider_error_status_is_502_and_not_cached(self):
        await self._failure_then_success("error", "Giphy answered HTTP 500")

    @inline
    async def test_provider_invalid_json_is_502_and_not_cached(self):
        await self._failure_then_success("not_json", "not JSON")

    @inline
    async def test_provider_timeout_is_502_and_not_cached(self):
        await self._failure_then_success("hang", "did not answer within 1 s")

    @inline
    async def test_unreachable_provider_is_502(self):
        await self.giphy.close_port()
        status, raw, _ = await self.raw_get("/gifs/trending")
        self.assertEqual(status, 502, raw)
        self.assertIn(b"could not be reached", raw)
        self.assertNotIn(API_KEY.encode(), raw)

    @inline
    async def test_unauthenticated(self):
        for kind, query in (("search", {"q": "cats"}), ("trending", None)):
            self.assertMatrixError(await self.request("GET", f"{API}/gifs/{kind}", query=query), 401,
                                   "M_MISSING_TOKEN")
            self.assertMatrixError(await self.request("GET", f"{API}/gifs/{kind}", query=query, token="nope"), 401,
                                   "M_UNKNOWN_TOKEN")
        self.assertEqual(self.giphy.requests, [])

    @inline
    async def test_bad_parameters(self):
        bad = [("search", {}), ("search", {"q": ""}), ("search", {"q": "   "}), ("search", {"q": "x" * 101}),
               ("search", {"q": "cats", "limit": 0}), ("search", {"q": "cats", "limit": 51}),
               ("search", {"q": "cats", "limit": "many"}), ("search", {"q": "cats", "offset": -1}),
               ("trending", {"limit": 51}), ("trending", {"offset": "x"}), ("trending", {"offset": 5000})]
        for kind, query in bad:
            status, body = await self.gifs(kind, **query)
            self.assertEqual(status, 400, (kind, query, body))
            self.assertIn(body["errcode"], ("M_INVALID_PARAM", "M_MISSING_PARAM"), (kind, query))
        self.assertEqual(self.giphy.requests, [])
        # The edges are accepted.
        for kind, query in (("search", {"q": "x" * 100, "limit": 50}), ("search", {"q": "c", "limit": 1}),
                            ("trending", {"limit": 50, "offset": 4999})):
            status, body = await self.gifs(kind, **query)
            self.assertEqual(status, 200, (kind, query, body))


class GifRateLimitTests:

    @inline
    async def test_per_user_limit(self):
        # Cache hits count too: the limit protects the server as well as the key.
        for _ in range(3):
            status, body = await self.gifs("search", q="cats")
            self.assertEqual(status, 200, body)
        status, body = await self.gifs("trending")
        self.assertMatrixError((status, body), 429, "M_LIMIT_EXCEEDED")
        self.assertGreater(body["retry_after_ms"], 0)
        self.assertEqual(len(self.giphy.requests), 1)
        # Another user has their own allowance.
        _bob, bob_token = await self.user("bob")
        status, body = await self.request("GET", f"{API}/gifs/trending", token=bob_token)
        self.assertEqual(status, 200, body)


class GifNotConfiguredTests:

    @inline
    async def test_not_configured_is_404(self):
        for kind, query in (("search", {"q": "cats"}), ("trending", {})):
            status, body = await self.gifs(kind, **query)
            self.assertMatrixError((status, body), 404, "M_NOT_FOUND")
            self.assertIn("not configured", body["error"])
        self.assertEqual(self.giphy.requests, [])
        # Parameters are still checked first.
        self.assertMatrixError(await self.gifs("search"), 400, "M_INVALID_PARAM")


class GifSqliteTests(GifProxyTests, GifTestCase):
    engine = "sqlite"


class GifPostgresTests(GifProxyTests, GifTestCase):
    engine = "postgres"


class GifRateLimitSqliteTests(GifRateLimitTests, GifTestCase):
    engine = "sqlite"
    gif_overrides = {"per_user_per_second": 0.001, "burst": 3}


class GifNotConfiguredSqliteTests(GifNotConfiguredTests, GifTestCase):
    engine = "sqlite"
    gif_overrides = {"api_key": ""}


# -- pure parts ----------------------------------------------------------------------

class ParseTests(unittest.TestCase):

    def test_skips_unusable_entries(self):
        good = giphy_item(1)
        no_images = {"id": "x", "title": "t"}
        insecure = giphy_item(2)
        insecure["images"]["fixed_height"]["url"] = "http://media.giphy.com/x.gif"
        still_only = giphy_item(3)
        del still_only["images"]["fixed_height_small"]
        weird_size = giphy_item(4)
        weird_size["images"]["fixed_height"]["width"] = "wide"
        gifs = parse_answer(json.dumps({"data": [good, no_images, insecure, "junk", still_only, weird_size]}).encode())
        self.assertEqual([g.id for g in gifs], ["gif1", "gif3", "gif4"])
        self.assertEqual(gifs[1].preview_url, "https://media3.giphy.com/media/gif3/100_s.gif")
        self.assertEqual((gifs[2].width, gifs[2].height), (0, 200))

    def test_rejects_answers_without_data(self):
        for raw in (b"not json", b"[]", b'{"meta": {"status": 403}}', b'{"data": {}}'):
            self.assertRaises(ProviderError, parse_answer, raw)


class CacheTests(unittest.TestCase):

    def test_expiry_and_lru(self):
        clock = task.Clock()
        cache = TtlLruCache(_ReactorClock(clock), ttl_secs=300, max_entries=2)
        cache.put(("a",), 1)
        cache.put(("b",), 2)
        self.assertEqual(cache.get(("a",)), 1)   # a is now the most recently used
        cache.put(("c",), 3)                     # so b goes
        self.assertIsNone(cache.get(("b",)))
        self.assertEqual((cache.get(("a",)), cache.get(("c",))), (1, 3))
        clock.advance(299)
        self.assertEqual(cache.get(("c",)), 3)
        clock.advance(1)
        self.assertIsNone(cache.get(("c",)))
        self.assertEqual(len(cache), 1)

    def test_zero_ttl_keeps_nothing(self):
        cache = TtlLruCache(_ReactorClock(task.Clock()), ttl_secs=0)
        cache.put(("a",), 1)
        self.assertIsNone(cache.get(("a",)))


class _ReactorClock:
    def __init__(self, clock):
        self._clock = clock

    def time(self) -> float:
        return self._clock.seconds()


class ConfigTests(unittest.TestCase):

    def _load(self, gif: dict):
        directory = self.mktemp()
        os.makedirs(directory)
        return load_config(write_config(directory, "sqlite:///x.db", {"gif": gif}), environ={})

    def test_defaults(self):
        gif = self._load({}).gif
        self.assertEqual((gif.provider, gif.api_key, gif.rating, gif.base_url, gif.cache_ttl_secs,
                          gif.per_user_per_second, gif.burst, gif.timeout_secs),
                         ("giphy", "", "pg-13", "https://api.giphy.com", 300, 1.0, 10, 5.0))

    def test_provider_and_rating_are_checked(self):
        self.assertRaises(ConfigError, self._load, {"provider": "tenor"})
        self.assertRaises(ConfigError, self._load, {"rating": "nc-17"})


# -- the web client's picker in a real browser -----------------------------------------

class GifPickerBrowserTests(BrowserTestCase):
    """tests/e2e/gif_picker.mjs: the picker lists trending, searches, picks with the
    keyboard, shows a provider failure inline, closes on Escape."""

    def setUp(self):
        self.giphy = FakeGiphy()
        self.addCleanup(lambda: defer.ensureDeferred(self.giphy.stop()))
        self.config_overrides = _settings(self.giphy.url)
        return BrowserTestCase.setUp(self)

    @inline
    async def test_picker(self):
        await self.user("picker")
        report = await self.run_scenario("gif_picker.mjs", {
            "base": self.base, "shots": self.screenshot_dir("gif-picker"), "username": "picker",
            "password": PASSWORD})
        # The CSP lets the provider's images in (img-src), and the stylesheet is the server's.
        self.assertEqual(report["imagesLoaded"], 25)
        self.assertTrue(report["cssServedByServer"])
        self.assertEqual(report["pageErrors"], [])
        self.assertEqual(report["searchFocused"], "Search GIFs")
        self.assertEqual(report["trendingFirst"], "Funny cat 0")
        self.assertEqual(report["searchFirst"], "Funny cat 0")
        self.assertEqual(report["previewSrc"], "https://media0.giphy.com/media/gif0/100.gif")
        # ArrowDown: first cell; ArrowRight: second; ArrowDown: a row (3 columns) below.
        self.assertEqual(report["focused"], "Funny cat 4")
        self.assertEqual(report["picked"]["id"], "gif4")
        self.assertEqual(report["picked"]["url"], "https://media4.giphy.com/media/gif4/200.gif")
        self.assertTrue(report["closedAfterPick"])
        self.assertIn("not answering", report["alert"])
        self.assertTrue(report["closedOnEscape"])
        self.assertIn("/api/v1/gifs/trending?limit=25&offset=0", report["requested"])
        self.assertIn("/api/v1/gifs/search?q=cats&limit=25&offset=0", report["requested"])
        # The stand-in saw the key; the browser's requests never carried it.
        self.assertTrue(all(r["args"]["api_key"] == API_KEY for r in self.giphy.requests))
        self.assertFalse(any(API_KEY in r for r in report["requested"]))
