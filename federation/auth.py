"""Who is calling: the X-Matrix signature on an incoming federation request, checked
against the origin's published key, and the room's server ACL for room-scoped calls."""

from __future__ import annotations

from typing import Any

from twisted.web import server

from federation.request_auth import RequestAuthError, parse_authorization, verify_request
from homeserver.events.received import is_valid_server_name
from homeserver.events.server_acl import server_allowed
from homeserver.http.errors import MatrixError, forbidden
from homeserver.http.request import parse_json_object


def unauthorized(message: str) -> MatrixError:
    return MatrixError(401, "M_UNAUTHORIZED", message)


class FederationAuthenticator:
    def __init__(self, hs):
        self._hs = hs
        self._server_name = hs.config.server_name

    async def authenticate(self, request: server.Request) -> tuple[str, Any]:
        """The origin server of a signed request and its JSON body (None without one);
        401 M_UNAUTHORIZED when the signature is missing or does not verify."""
        headers = request.requestHeaders.getRawHeaders(b"Authorization") or []
        header = None
        for raw in headers:
            try:
                header = parse_authorization(raw.decode("utf-8", "replace"))
                break
            except RequestAuthError:
                continue
        if header is None:
            raise unauthorized("Missing or malformed X-Matrix Authorization header")
        if not is_valid_server_name(header.origin):
            raise unauthorized("Origin is not a valid server name")
        if header.origin == self._server_name:
            raise unauthorized("Requests from ourselves are not accepted")
        content = None
        if request.method in (b"PUT", b"POST"):
            content = parse_json_object(request, allow_empty=True)
        try:
            verify_key = await self._hs.keyring.get_verify_key(header.origin, header.key, self._hs.clock.time_ms())
        except Exception as error:
            raise unauthorized(f"Could not get the key {header.key} of {header.origin}: {error}") from None
        try:
            verify_request(header, request.method.decode("ascii"), request.uri.decode("utf-8", "replace"),
                           self._server_name, verify_key, content)
        except RequestAuthError as error:
            raise unauthorized(str(error)) from None
        # A server that reaches us is up again: send it what waits for it now.
        sender = getattr(self._hs, "federation_sender", None)
        if sender is not None:
            sender.on_destination_seen(header.origin)
        return header.origin, content

    async def check_acl(self, origin: str, room_id: str) -> None:
        """403 if the room's m.room.server_acl shuts ``origin`` out."""
        acl = await room_server_acl(self._hs, room_id)
        if acl is not None and not server_allowed(origin, acl):
            raise forbidden(f"Server {origin} is banned from this room by its server ACL")


async def room_server_acl(hs, room_id: str) -> dict | None:
    """The content of the room's current m.room.server_acl, if it has one."""
    head = await hs.room_heads.get(room_id)
    acl_id = head.state.get(("m.room.server_acl", "")) if head is not None else None
    acl = await hs.events.get_event(acl_id) if acl_id else None
    return acl.content if acl is not None else None


