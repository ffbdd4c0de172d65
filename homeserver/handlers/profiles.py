"""Profiles: display name and avatar, copied into the user's member events everywhere.

Changing either sends a new m.room.member event (membership unchanged) into every room
the user is in, so other members and other servers see the new name.

Profiles of other servers' users are asked of their server (federation
``query/profile``) through ``remote``, set when federation is enabled.
"""

from __future__ import annotations

from twisted.logger import Logger

from homeserver.http.errors import MatrixError, not_found

log = Logger()

MAX_DISPLAYNAME = 256
MAX_AVATAR_URL = 1000


class ProfileHandler:
    def __init__(self, server_name: str, profiles, users, rooms, heads, writer, sender):
        self._server_name = server_name
        self._profiles = profiles
        self._users = users
        self._rooms = rooms
        self._heads = heads
        self._writer = writer
        self._sender = sender
        # async (user_id) -> profile dict of a user of another server (federation.queries).
        self.remote = None
        # async (user_id) -> bool: an application service created the user (appservice.queries).
        self.user_query = None

    def is_local(self, user_id: str) -> bool:
        return user_id.endswith(":" + self._server_name)

    async def get_profile(self, user_id: str) -> dict:
        if not self.is_local(user_id):
            if self.remote is None:
                raise not_found("Profiles of other servers need federation")
            return await self.remote(user_id)
        return await self.get_local_profile(user_id)

    async def get_local_profile(self, user_id: str) -> dict:
        if not self.is_local(user_id):
            raise not_found("Not a user of this server")
        if not await self._users.user_exists(user_id) and not (
                self.user_query is not None and await self.user_query(user_id)
                and await self._users.user_exists(user_id)):
            raise not_found("Profile not found")
        stored = await self._profiles.get(user_id)
        displayname, avatar_url = stored if stored else (None, None)
        if displayname is None and stored is None:
            displayname = user_id[1:].split(":", 1)[0]
        body = {}
        if displayname is not None:
            body["displayname"] = displayname
        if avatar_url is not None:
            body["avatar_url"] = avatar_url
        return body

    async def member_content(self, user_id: str) -> dict:
        """The profile fields that go into a membership event of ours (none for users of
        other servers: their server fills them in)."""
        try:
            return await self.get_local_profile(user_id)
        except MatrixError:
            return {}

    async def set_field(self, user_id: str, field_name: str, value: str | None) -> None:
        limit = MAX_DISPLAYNAME if field_name == "displayname" else MAX_AVATAR_URL
        if value is not None and len(value) > limit:
            raise MatrixError(400, "M_TOO_LARGE", f"{field_name} is longer than {limit} characters")
        if field_name == "avatar_url" and value and not value.startswith("mxc://"):
            raise MatrixError(400, "M_INVALID_PARAM", "avatar_url must be an mxc:// URI")
        await self._profiles.set_field(user_id, field_name, value)
        await self._propagate(user_id)

    async def _propagate(self, user_id: str) -> None:
        profile = await self.member_content(user_id)
        for room_id in await self._rooms.get_rooms_for_user(user_id):
            head = await self._heads.get(room_id)
            member_id = head.state.get(("m.room.member", user_id)) if head else None
            member = (await self._writer.get_events([member_id])).get(member_id) if member_id else None
            if member is None or member.membership != "join":
                continue
            content = {k: v for k, v in member.content.items() if k not in ("displayname", "avatar_url")}
            content.update(profile)
            try:
                await self._sender.send(user_id, room_id, "m.room.member", content, state_key=user_id)
            except MatrixError as error:
                # A room may forbid it (power levels); the others still get the new name.
                log.info("profile not updated in {room_id}: {error}", room_id=room_id, error=error.error)
