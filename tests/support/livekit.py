"""A LiveKit-protocol test double: RoomService's Twirp endpoints on a free port. Every
call must carry a token that livekit-api's own TokenVerifier accepts for our key and
secret, with the room-admin grant for the room named in the body; calls are recorded."""

from __future__ import annotations

import json

from livekit import api as lk
from twisted.internet import reactor
from twisted.web import resource, server

API_KEY = "drocsid-test-key"
API_SECRET = "drocsid-test-secret-that-is-long-enough-for-hs256"


class _RoomService(resource.Resource):
    isLeaf = True

    def __init__(self, double: "FakeLiveKit"):
        super().__init__()
        self.double = double

    def render_POST(self, request):
        method = request.path.decode().rsplit("/", 1)[-1]
        body = json.loads(request.content.read() or b"{}")
        auth = (request.getHeader(b"authorization") or b"").decode()
        entry = {"method": method, "body": body, "claims": None, "refused": None}
        self.double.calls.append(entry)
        request.setHeader(b"Content-Type", b"application/json")
        try:
            claims = lk.TokenVerifier(API_KEY, API_SECRET).verify(auth.removeprefix("Bearer "))
        except Exception as error:  # anything the verifier refuses
            entry["refused"] = str(error)
            request.setResponseCode(401)
            return b'{"code": "unauthenticated"}'
        entry["claims"] = claims
        if not claims.video.room_admin or claims.video.room != body.get("room"):
            entry["refused"] = "no room-admin grant for this room"
            request.setResponseCode(403)
            return b'{"code": "permission_denied"}'
        if self.double.fail_with:
            request.setResponseCode(self.double.fail_with)
            return b'{"code": "internal"}'
        return b"{}"


class FakeLiveKit:
    def __init__(self):
        self.calls: list[dict] = []
        self.fail_with: int | None = None
        self.port = None

    def start(self) -> int:
        self.port = reactor.listenTCP(0, server.Site(_RoomService(self)), interface="127.0.0.1")
        return self.port.getHost().port

    def stop(self):
        return self.port.stopListening()

    def accepted(self, method: str) -> list[dict]:
        return [c for c in self.calls if c["method"] == method and c["refused"] is None]
