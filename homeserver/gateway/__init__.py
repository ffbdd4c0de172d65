"""The Discord-style gateway, a WebSocket at ``/gateway`` (DESIGN.md §3, docs/api.md).

- ``protocol``: frames, opcodes, close codes, the autobahn protocol of one socket
- ``sessions``: sessions (outliving their sockets) and their sequence numbers
- ``contexts``: who may see what, cached per server until its state changes
- ``payloads``: events, typing, presence, receipts -> dispatches in /api/v1 shapes
- ``dispatch``: the pump that numbers, stores, then sends dispatches
- ``service``: IDENTIFY / RESUME / PRESENCE_UPDATE and the sessions' lifetime

``ClientRoot`` puts the gateway on the client listener next to the router.
"""

from __future__ import annotations

from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from homeserver import webclient
from homeserver.gateway.service import Gateway
from homeserver.http.errors import MatrixError
from homeserver.http.site import write_json_error

GATEWAY_PATH = b"/gateway"

__all__ = ["ClientRoot", "Gateway"]


class ClientRoot(Resource):
    """The client listener's root: ``/gateway`` upgrades to the WebSocket, the web
    client's paths go to the web client, everything else to the router."""

    isLeaf = True

    def __init__(self, router: Resource, gateway: Gateway, web_client: Resource | None = None):
        super().__init__()
        self._router = router
        self._gateway = gateway
        self._web_client = web_client

    def render(self, request):
        if request.path != GATEWAY_PATH:
            if self._web_client is not None and webclient.owns(request.path):
                return self._web_client.render(request)
            return self._router.render(request)
        upgrade = (request.getHeader(b"Upgrade") or b"").lower()
        if upgrade != b"websocket":
            write_json_error(request, MatrixError(426, "M_UNKNOWN", "The gateway is a WebSocket: send an Upgrade"))
            return NOT_DONE_YET
        channel = request.channel
        result = self._gateway.resource.render(request)
        if channel.transport is None:
            _release_from_site(request, channel)
        return result


def _release_from_site(request, channel) -> None:
    """The socket now belongs to the WebSocket: the HTTP request will never finish, so
    the site must stop counting it (a shutdown waits for requests in flight)."""
    site = getattr(request, "http_site", None)
    if site is None:
        return
    site.request_finished(request)
    protocols = getattr(site, "_protocols", None)
    if protocols is not None:
        for protocol in list(protocols):
            if getattr(protocol, "_channel", protocol) is channel:
                protocols.discard(protocol)
                break
