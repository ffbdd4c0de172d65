"""The ``/api/v1`` face: the original Drocsid's REST API over the same handlers as the
Matrix face. Each module here declares its routes on one registry (``routes.py``),
from which ``GET /api/v1/openapi.json`` is generated.

To add routes, write a module with ``register(api, hs)`` and list it in ``_MODULES``.
"""

from __future__ import annotations

from homeserver.api import (auth, channel_activity, channels, dms, email_auth, gifs, invites, messages, moderation,
                            relationships, roles, search, servers, users, voice, webhooks)
from homeserver.api.openapi import build_document
from homeserver.api.routes import ApiRoutes
from homeserver.http.router import Router

# users first: other modules refer to its User schema.
_MODULES = (users, auth, servers, channels, messages, roles, invites, moderation, dms, relationships, webhooks,
            search, channel_activity, gifs, email_auth, voice)


def register_routes(router: Router, hs) -> None:
    api = ApiRoutes(router, hs.auth)
    for module in _MODULES:
        module.register(api, hs)

    async def openapi(call):
        return 200, build_document(api, hs.config.server.public_baseurl, hs.config.instance.name)

    api.add("GET", "/openapi.json", openapi, tag="meta", auth=False,
            summary="This OpenAPI 3.1 document", response={"type": "object"})
