"""Helpers for tests of the /api/v1 face: users and requests that must succeed."""

from __future__ import annotations

from urllib.parse import quote

API = "/api/v1"
V3 = "/_matrix/client/v3"


def q(room_id: str) -> str:
    return quote(room_id, safe="")


class ApiHelpers:
    """Mixed into a HomeserverTestCase."""

    async def user(self, name: str) -> tuple[str, str]:
        body = await self.register(name)
        return body["user_id"], body["access_token"]

    async def ok(self, method, path, body=None, *, token):
        status, answer = await self.request(method, path, body, token=token)
        self.assertEqual(status, 200, answer)
        return answer

    async def setup_server(self):
        """alice owns a server with #general; bob is a member who joined it.
        Returns ((alice, token), (bob, bob_token), space, channel)."""
        alice, token = await self.user("alice")
        bob, bob_token = await self.user("bob")
        server = await self.ok("POST", f"{API}/servers", {"name": "Guild"}, token=token)
        space, channel = server["id"], server["channels"][0]["id"]
        await self.ok("POST", f"{V3}/rooms/{q(space)}/invite", {"user_id": bob}, token=token)
        await self.ok("POST", f"{V3}/join/{q(space)}", {}, token=bob_token)
        await self.ok("POST", f"{API}/channels/{q(channel)}/join", {}, token=bob_token)
        return (alice, token), (bob, bob_token), space, channel
