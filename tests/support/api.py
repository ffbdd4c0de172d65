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
