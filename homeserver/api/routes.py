"""The ``/api/v1`` route registry: every route declares what it takes and gives, once.

A declaration is both behaviour and documentation: a route declared with ``auth=True``
is authenticated before its handler runs, a declared ``request`` schema is parsed and
validated before it, and the OpenAPI document is generated from the same declarations,
so it cannot drift from what the server does.

A handler is ``async def handler(call: ApiCall) -> (status, body)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from homeserver.api.schema import validate_body
from homeserver.handlers.auth import Requester
from homeserver.http.request import parse_json_object
from homeserver.http.router import Router

API_PREFIX = "/api/v1"


@dataclass
class ApiCall:
    """What a handler gets: the request, the authenticated user, the validated body."""
    request: Any
    requester: Requester | None
    body: dict
    params: dict


@dataclass(frozen=True)
class ApiRoute:
    method: str
    path: str                      # relative to /api/v1, with {name} parameters
    handler: Callable[[ApiCall], Awaitable[Any]]
    summary: str
    tag: str
    auth: bool = True
    request: dict | None = None    # JSON Schema of the body; None: no body
    response: dict | None = None   # JSON Schema of the 200 body
    status: int = 200
    rate_limited: bool = False
    description: str = ""


@dataclass
class ApiRoutes:
    """The registry of one homeserver: routes are mounted on its router as they are added."""
    router: Router
    authenticator: Any
    routes: list[ApiRoute] = field(default_factory=list)
    schemas: dict[str, dict] = field(default_factory=dict)

    def schema(self, name: str, definition: dict) -> dict:
        """Register a named schema (an OpenAPI component); returns a reference to it."""
        self.schemas[name] = definition
        return {"$ref": f"#/components/schemas/{name}"}

    def add(self, method: str, path: str, handler, *, summary: str, tag: str, **declared) -> None:
        route = ApiRoute(method, path, handler, summary, tag, **declared)
        if any(r.method == method and r.path == path for r in self.routes):
            raise ValueError(f"{method} {API_PREFIX}{path} is declared twice")
        self.routes.append(route)
        self.router.add(method, API_PREFIX + path, self._entry(route),
                        name=f"api {method} {path}")

    def _entry(self, route: ApiRoute):
        async def entry(request, **params):
            # Authenticate first: an anonymous caller learns nothing about the body rules.
            requester = await self.authenticator.authenticate(request) if route.auth else None
            body = {}
            if route.request is not None:
                body = parse_json_object(request)
                validate_body(route.request, body)
            return await route.handler(ApiCall(request, requester, body, params))
        return entry
