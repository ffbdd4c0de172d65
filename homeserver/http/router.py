"""Routing: servlets declare (method, path pattern, async handler); the router parses
nothing but the path and turns whatever the handler raises into Matrix error JSON.

A handler is ``async def handler(request, **path_params) -> Response | (status, body)``.
Path params are percent-decoded segments. Unknown paths answer 404 M_UNRECOGNIZED and a
known path with another method 405 M_UNRECOGNIZED, as the specification asks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable
from urllib.parse import unquote

from twisted.internet import defer
from twisted.logger import Logger
from twisted.web import server
from twisted.web.resource import Resource

from homeserver.http.errors import MatrixError, unrecognized
from homeserver.http.site import write_json, write_json_error

log = Logger(namespace="drocsid.http")

Handler = Callable[..., Awaitable[Any]]

CLIENT_PREFIX = r"/_matrix/client/(?:r0|v3)"
CLIENT_V1_PREFIX = r"/_matrix/client/v1"


@dataclass
class Response:
    """A non-JSON answer (media, HTML, redirects)."""
    status: int
    body: bytes
    content_type: bytes = b"application/octet-stream"
    headers: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Route:
    method: bytes
    pattern: re.Pattern
    handler: Handler
    name: str


def compile_path(path: str) -> re.Pattern:
    """``/rooms/{room_id}/state`` -> a regex with named groups matching one segment."""
    regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", path)
    return re.compile(f"^{regex}$")


class Router(Resource):
    isLeaf = True

    def __init__(self):
        super().__init__()
        self._routes: list[Route] = []

    def add(self, method: str, path: str, handler: Handler, name: str | None = None) -> None:
        methods = [method.encode()]
        if method == "GET":
            methods.append(b"HEAD")
        for m in methods:
            self._routes.append(Route(m, compile_path(path), handler, name or handler.__name__))

    def _match(self, method: bytes, path: str) -> tuple[Route | None, dict, bool]:
        path_known = False
        for route in self._routes:
            found = route.pattern.match(path)
            if found is None:
                continue
            path_known = True
            if route.method == method:
                params = {k: unquote(v) for k, v in found.groupdict().items()}
                return route, params, True
        return None, {}, path_known

    def render(self, request: server.Request):
        if request.method == b"OPTIONS":
            request.setResponseCode(204)
            request.setHeader(b"Content-Length", b"0")
            return b""
        path = request.path.decode("utf-8", "replace")
        route, params, path_known = self._match(request.method, path)
        if route is None:
            if path_known:
                write_json_error(request, MatrixError(405, "M_UNRECOGNIZED", "Method not allowed"))
            else:
                write_json_error(request, unrecognized())
            return server.NOT_DONE_YET
        d = defer.ensureDeferred(route.handler(request, **params))
        site = getattr(request, "http_site", None)
        if site is not None:
            site.track_handler(d)
        d.addCallbacks(lambda result: _write_result(request, result),
                       lambda failure: _write_failure(request, route, failure))
        return server.NOT_DONE_YET


def _write_result(request: server.Request, result: Any) -> None:
    if isinstance(result, Response):
        if request.finished or request._disconnected:
            return
        request.setResponseCode(result.status)
        request.setHeader(b"Content-Type", result.content_type)
        for name, value in result.headers.items():
            request.setHeader(name, value)
        request.setHeader(b"Content-Length", str(len(result.body)).encode())
        if request.method != b"HEAD":
            request.write(result.body)
        request.finish()
        return
    status, body = result
    write_json(request, status, body)


def _write_failure(request: server.Request, route: Route, failure) -> None:
    if failure.check(MatrixError):
        write_json_error(request, failure.value)
        return
    if failure.check(defer.CancelledError) and request._disconnected:
        return
    log.failure("unhandled error in {route}", failure, route=route.name)
    write_json_error(request, MatrixError(500, "M_UNKNOWN", "Internal server error"))
