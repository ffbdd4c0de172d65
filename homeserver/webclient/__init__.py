"""The Drocsid web client, served by the homeserver on its client listener (same origin as
/api/v1 and /gateway, so no CORS and no second process).

The client is plain ES modules, CSS and HTML in ``static/``: no build step and nothing
fetched from elsewhere at run time. Paths the client routes itself (``/channels/...``,
``/invite/<code>``, ``/login`` ...) answer ``index.html``; files are served with their
type, an ETag, gzip when the browser takes it, and a Content-Security-Policy that allows
nothing but this origin.
"""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
import os

from twisted.web.resource import Resource

STATIC_DIR = os.path.join(os.path.dirname(__file__), "static")
# Modules from npm that the client imports on demand (``make run`` installs them).
VENDOR = {b"/vendor/livekit-client.esm.mjs": os.path.join(os.path.dirname(__file__), "node_modules", "livekit-client",
                                                          "dist", "livekit-client.esm.mjs")}

# First path segments the client owns; everything else belongs to the Matrix and /api/v1 router.
CLIENT_ROUTES = frozenset({b"", b"channels", b"invite", b"login", b"register", b"settings", b"reset-password",
                           b"verify-email"})
STATIC_PREFIXES = (b"/js/", b"/icons/")
STATIC_FILES = frozenset({b"/app.css", b"/settings.css", b"/gif.css", b"/sw.js", b"/manifest.webmanifest", b"/index.html"})

_TYPES = {".js": "text/javascript; charset=utf-8", ".mjs": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
          ".html": "text/html; charset=utf-8", ".webmanifest": "application/manifest+json",
          ".svg": "image/svg+xml", ".png": "image/png", ".json": "application/json"}


def content_security_policy(connect: tuple[str, ...] = (), images: tuple[str, ...] = ()) -> str:
    """Nothing but this origin, plus the voice server clients connect to (``connect``)
    and the hosts GIFs come from (``images``). Media is downloaded with the access token
    into blob: URLs, so img-src needs blob:."""
    img = " ".join(("'self'", "blob:", "data:") + tuple(images))
    connections = " ".join(("'self'",) + tuple(connect))
    return ("default-src 'self'; script-src 'self'; style-src 'self'; "
            f"img-src {img}; media-src 'self' blob:; connect-src {connections}; "
            "worker-src 'self' blob:; manifest-src 'self'; object-src 'none'; "
            "base-uri 'none'; frame-ancestors 'none'; form-action 'self'")


def origins_of(url: str) -> tuple[str, ...]:
    """A ws(s):// or http(s):// URL's origin in both schemes (LiveKit speaks both)."""
    from urllib.parse import urlsplit
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return ()
    secure = parts.scheme in ("wss", "https")
    return (f"{'wss' if secure else 'ws'}://{parts.netloc}", f"{'https' if secure else 'http'}://{parts.netloc}")


CONTENT_SECURITY_POLICY = content_security_policy()


def owns(path: bytes) -> bool:
    """Whether a request path is the web client's rather than the API's."""
    if path in VENDOR:
        return True
    if path in STATIC_FILES or path.startswith(STATIC_PREFIXES):
        return True
    first = path.lstrip(b"/").split(b"/", 1)[0]
    return first in CLIENT_ROUTES


class _File:
    __slots__ = ("body", "gzipped", "etag", "content_type")

    def __init__(self, body: bytes, content_type: str):
        self.body = body
        self.gzipped = gzip.compress(body, 9, mtime=0)
        self.etag = b'"' + hashlib.sha256(body).hexdigest()[:20].encode() + b'"'
        self.content_type = content_type.encode()


class WebClient(Resource):
    """Serves ``static/``; files are read once and kept in memory (the whole client is
    small), unless ``reload`` asks for a fresh read each time (development)."""

    isLeaf = True

    def __init__(self, static_dir: str = STATIC_DIR, reload: bool = False, policy: str = CONTENT_SECURITY_POLICY):
        super().__init__()
        self._policy = policy.encode()
        self._dir = os.path.realpath(static_dir)
        self._reload = reload
        self._cache: dict[str, _File | None] = {}

    def _file(self, relative: str) -> _File | None:
        if not self._reload and relative in self._cache:
            return self._cache[relative]
        path = os.path.realpath(os.path.join(self._dir, relative))
        found = None
        if path.startswith(self._dir + os.sep) and os.path.isfile(path):
            with open(path, "rb") as f:
                body = f.read()
            ext = os.path.splitext(path)[1]
            found = _File(body, _TYPES.get(ext) or mimetypes.guess_type(path)[0] or "application/octet-stream")
        self._cache[relative] = found
        return found

    def _vendor(self, path: bytes) -> _File | None:
        key = path.decode()
        if key not in self._cache:
            try:
                with open(VENDOR[path], "rb") as f:
                    self._cache[key] = _File(f.read(), _TYPES[".js"])
            except OSError:
                return None  # not installed: the client says voice is unavailable
        return self._cache[key]

    def render(self, request):
        if request.method not in (b"GET", b"HEAD"):
            request.setResponseCode(405)
            request.setHeader(b"Allow", b"GET, HEAD")
            return b""
        path = request.path
        if path in VENDOR:
            found = self._vendor(path)
        else:
            if path in STATIC_FILES or path.startswith(STATIC_PREFIXES):
                relative = path.decode("utf-8", "replace").lstrip("/")
            else:
                relative = "index.html"
            found = self._file(relative)
        if found is None:
            request.setResponseCode(404)
            request.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
            return b"Not found\n"
        request.setHeader(b"Content-Type", found.content_type)
        request.setHeader(b"ETag", found.etag)
        # The shell must be revalidated so an upgrade is seen; the service worker caches it offline.
        request.setHeader(b"Cache-Control", b"no-cache")
        request.setHeader(b"Content-Security-Policy", self._policy)
        request.setHeader(b"X-Content-Type-Options", b"nosniff")
        request.setHeader(b"Referrer-Policy", b"no-referrer")
        request.setHeader(b"Vary", b"Accept-Encoding")
        if path == b"/sw.js":
            request.setHeader(b"Service-Worker-Allowed", b"/")
        if request.getHeader(b"If-None-Match") == found.etag:
            request.setResponseCode(304)
            return b""
        body = found.body
        if b"gzip" in (request.getHeader(b"Accept-Encoding") or b""):
            request.setHeader(b"Content-Encoding", b"gzip")
            body = found.gzipped
        request.setHeader(b"Content-Length", str(len(body)).encode())
        return b"" if request.method == b"HEAD" else body
