"""Invite codes across instances (unstable Drocsid federation API).

Served to other servers (X-Matrix signed):

- ``GET /_matrix/federation/unstable/io.drocsid/invite_codes/{code}``: the preview of
  one of our codes (as ``GET /api/v1/invites/{code}`` shows it).
- ``POST /_matrix/federation/unstable/io.drocsid/invite_codes/{code}/redeem`` with
  ``{user_id}``: redeem one of our codes for a user of the calling server. We take a use
  atomically, refuse banned users, send the Matrix invite to the user over federation
  and answer ``{room_id, channels, already_member}``: the space, and the channels the
  user may view (restricted rooms they can join, or private ones we invited them to).

Asked of other servers (``RemoteInviteCodes``): the same two, for our users; after a
redemption our user joins the space by the ordinary remote join (make_join/send_join)
and then the channels, whose restricted joins the other server authorises.
"""

from __future__ import annotations

from twisted.internet import task
from twisted.logger import Logger

from federation.client import path_of
from homeserver.drocsid import invites
from homeserver.drocsid.server_state import Server, load_server
from homeserver.events.received import is_valid_user_id
from homeserver.handlers.public_rooms import remote_error
from homeserver.http.errors import MatrixError, forbidden, invalid_param, not_found

log = Logger(namespace="drocsid.federation.invite_codes")

PREFIX = "/_matrix/federation/unstable/io.drocsid/invite_codes/"
INVITE_WAIT_SECS = 30.0


def register(router, hs, authenticated) -> None:
    async def get_preview(request, origin, code):
        invite, server = await invites.usable_invite(hs, code)
        return 200, invites.preview_json(invite, server)

    async def redeem(request, origin, body, code):
        user_id = body.get("user_id")
        if not is_valid_user_id(user_id):
            raise invalid_param("'user_id' must be a user ID")
        if user_id.split(":", 1)[1] != origin:
            raise forbidden("The user does not belong to the requesting server")
        return 200, await invites.admit_remote_user(hs, code, user_id)

    router.add("GET", PREFIX + "{code}", authenticated(get_preview))
    router.add("POST", PREFIX + "{code}/redeem", authenticated(redeem, with_body=True))


class RemoteInviteCodes:
    """Codes of other instances, used by our users."""

    def __init__(self, hs):
        self._hs = hs

    async def _ask(self, method: str, server_name: str, path: str, body: dict | None = None) -> dict:
        client = self._hs.federation_client
        try:
            if method == "GET":
                return await client.get_json(server_name, path, timeout=30)
            return await client.post_json(server_name, path, body, timeout=60)
        except Exception as error:
            raise remote_error(server_name, error) from None

    async def _await_invite(self, room_id: str, user_id: str) -> None:
        """Wait (a bounded time) for the user's invite into a room we are in; if it does
        not come, the join that follows says why."""
        deadline = self._hs.clock.time() + INVITE_WAIT_SECS
        while self._hs.clock.time() < deadline:
            if await self._hs.membership.current_membership(room_id, user_id) in ("invite", "join"):
                return
            await task.deferLater(self._hs.reactor, 0.05, lambda: None)

    async def preview(self, server_name: str, code: str) -> dict:
        answer = await self._ask("GET", server_name, path_of(PREFIX, code))
        server = answer.get("server")
        if not isinstance(server, dict) or not isinstance(server.get("id"), str):
            raise MatrixError(502, "M_UNKNOWN", f"{server_name} answered an invalid invite preview")
        return {"code": code, "server": server, "expires_at": answer.get("expires_at"),
                "instance": server_name}

    async def redeem(self, server_name: str, code: str, user_id: str) -> Server:
        hs = self._hs
        answer = await self._ask("POST", server_name, path_of(PREFIX, code, "redeem"), {"user_id": user_id})
        room_id = answer.get("room_id")
        channels = answer.get("channels")
        if not isinstance(room_id, str) or not room_id.startswith("!") or not isinstance(channels, list):
            raise MatrixError(502, "M_UNKNOWN", f"{server_name} answered an invalid redemption")
        if await hs.membership.server_in_room(room_id):
            # Our users are in the space already: the invite reaches us as an event of the
            # room, after the answer, and the join is built here once it has arrived.
            await self._await_invite(room_id, user_id)
        await hs.membership.join(user_id, room_id, servers=[server_name])
        for channel_id in channels:
            if not isinstance(channel_id, str) or not channel_id.startswith("!"):
                continue
            try:
                await hs.membership.join(user_id, channel_id, servers=[server_name])
            except MatrixError as error:
                # The user is in the server; a channel refused does not undo that.
                log.warn("joining {user_id} to channel {room_id} on {server} failed: {error}", user_id=user_id,
                         room_id=channel_id, server=server_name, error=error)
        server = await load_server(hs, room_id)
        if server is None:
            raise not_found("The invite code's server is gone")
        return server


def attach(hs) -> None:
    """Serve our codes to other servers and let our users redeem theirs."""
    hs.remote_invite_codes = RemoteInviteCodes(hs)
    hs.federation_route_modules.append(register)
