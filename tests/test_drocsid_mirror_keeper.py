"""Roles changed by a plain Matrix client still bring the rooms in step: the power-level
mirror and private-channel membership follow, as they do after /api/v1 changes."""

from __future__ import annotations

from homeserver.drocsid import permissions as perms
from tests.support.api import API, V3, ApiHelpers, q
from tests.support.federation import sleep
from tests.support.server import HomeserverTestCase, inline


class MirrorKeeperTests(ApiHelpers):
    async def wait_for(self, probe, what: str, timeout: float = 15.0):
        waited = 0.0
        while waited < timeout:
            value = await probe()
            if value:
                return value
            await sleep(0.05)
            waited += 0.05
        self.fail(f"timed out waiting for {what}")

    async def levels(self, room, token):
        return await self.ok("GET", f"{V3}/rooms/{q(room)}/state/m.room.power_levels", token=token)

    async def put_state(self, room, event_type, state_key, content, token):
        await self.ok("PUT", f"{V3}/rooms/{q(room)}/state/{event_type}/{q(state_key)}", content, token=token)

    @inline
    async def test_matrix_written_roles_are_mirrored(self):
        alice, token = await self.user("alice")
        bob, bob_token = await self.user("bob")
        server = await self.ok("POST", f"{API}/servers", {"name": "Guild"}, token=token)
        space, general = server["id"], server["channels"][0]["id"]
        invite = await self.ok("POST", f"{API}/servers/{q(space)}/invites", {}, token=token)
        await self.ok("POST", f"{API}/invites/{invite['code']}", token=bob_token)
        self.assertEqual((await self.levels(general, token))["events_default"], 0)

        # @everyone may no longer send: the channel's events_default rises.
        everyone = {"name": "@everyone", "position": 0,
                    "permissions": str(perms.DEFAULT_EVERYONE & ~perms.P.SEND_MESSAGES)}
        await self.put_state(space, perms.ROLE_EVENT, "", everyone, token)

        async def read_only():
            return (await self.levels(general, token))["events_default"] == perms.SPEAKER_LEVEL
        await self.wait_for(read_only, "#general's events_default to follow @everyone")

        # A role given by a member state event: bob becomes a moderator in the mirror.
        mod = {"name": "Mod", "position": 1, "permissions": str(int(perms.P.MANAGE_MESSAGES))}
        await self.put_state(space, perms.ROLE_EVENT, "mod", mod, token)
        await self.put_state(space, perms.MEMBER_EVENT, perms.member_state_key(bob), {"roles": ["mod"]}, token)

        async def moderator():
            return (await self.levels(general, token))["users"].get(bob) == perms.MODERATOR_LEVEL
        await self.wait_for(moderator, "bob's level in #general")

        # A member overwrite written by hand opens a private channel to bob: he is let in.
        staff = await self.ok("POST", f"{API}/servers/{q(space)}/channels", {"name": "staff", "private": True},
                              token=token)
        allow = {"type": "member", "allow": str(int(perms.P.VIEW_CHANNEL)), "deny": "0"}
        await self.put_state(staff["id"], perms.OVERWRITE_EVENT, perms.member_state_key(bob), allow, token)

        async def let_in():
            joined = (await self.ok("GET", f"{V3}/joined_rooms", token=bob_token))["joined_rooms"]
            return staff["id"] in joined
        await self.wait_for(let_in, "bob in #staff")
        await self.put_state(staff["id"], perms.OVERWRITE_EVENT, perms.member_state_key(bob), {}, token)

        async def let_out():
            joined = (await self.ok("GET", f"{V3}/joined_rooms", token=bob_token))["joined_rooms"]
            return staff["id"] not in joined
        await self.wait_for(let_out, "bob out of #staff")


class MirrorKeeperSqliteTests(MirrorKeeperTests, HomeserverTestCase):
    engine = "sqlite"


class MirrorKeeperPostgresTests(MirrorKeeperTests, HomeserverTestCase):
    engine = "postgres"
