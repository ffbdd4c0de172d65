"""MatrixRTC compatibility (issue 9): OpenID tokens, the lk-jwt-service-style endpoint that
trades one for a LiveKit token (locally and for a user of another instance, checked through
that instance's federation /openid/userinfo), the rtc foci in /.well-known/matrix/client, and
Element Call's call-membership state shown as connected in a Drocsid voice channel."""

from __future__ import annotations

from urllib.parse import quote

from livekit import api as lk

from homeserver.voice.service import VoiceService
from tests.support.api import API, V3, ApiHelpers, q
from tests.support.federation import TwoServerTestCase
from tests.support.livekit import API_KEY, API_SECRET
from tests.support.server import HomeserverTestCase, inline

LIVEKIT = {"livekit": {"url": "ws://127.0.0.1:9", "public_url": "wss://lk.example.org", "api_key": API_KEY,
                       "api_secret": API_SECRET}}


class MatrixRtcTests(ApiHelpers, HomeserverTestCase):
    config_overrides = LIVEKIT

    async def openid(self, user_id: str, token: str) -> dict:
        return await self.ok("POST", f"{V3}/user/{q(user_id)}/openid/request_token", {}, token=token)

    @inline
    async def test_openid_tokens_and_userinfo(self):
        alice, token = await self.user("alice")
        bob, _bob_token = await self.user("bob")
        issued = await self.openid(alice, token)
        self.assertEqual((issued["token_type"], issued["matrix_server_name"], issued["expires_in"]),
                         ("Bearer", self.hs.config.server_name, 3600))
        code, answer = await self.request("POST", f"{V3}/user/{q(bob)}/openid/request_token", {}, token=token)
        self.assertEqual((code, answer["errcode"]), (403, "M_FORBIDDEN"))
        self.assertEqual(self.hs.openid_tokens.user_of(issued["access_token"]), alice)
        self.assertIsNone(self.hs.openid_tokens.user_of("forged"))

    @inline
    async def test_well_known_names_the_focus(self):
        body = await self.ok("GET", "/.well-known/matrix/client", token=None)
        self.assertEqual(body["org.matrix.msc4143.rtc_foci"],
                         [{"type": "livekit", "livekit_service_url": self.hs.config.server.public_baseurl.rstrip("/")
                           + "/livekit/jwt"}])

    @inline
    async def test_an_openid_token_buys_a_livekit_token_for_a_joined_room(self):
        (alice, token), (bob, bob_token), space, _general = await self.setup_server()
        voice = (await self.ok("POST", f"{API}/servers/{q(space)}/channels", {"name": "V", "type": "voice"},
                               token=token))["id"]
        await self.ok("POST", f"{API}/channels/{q(voice)}/join", {}, token=bob_token)
        openid = await self.openid(bob, bob_token)
        answer = await self.ok("POST", "/livekit/jwt/sfu/get", {"room": voice, "openid_token": openid,
                                                                "device_id": "PHONE"}, token=None)
        self.assertEqual(answer["url"], "wss://lk.example.org")
        claims = lk.TokenVerifier(API_KEY, API_SECRET).verify(answer["jwt"])
        self.assertEqual((claims.identity, claims.video.room, claims.video.room_join), (f"{bob}:PHONE", voice, True))
        self.assertIn("microphone", claims.video.can_publish_sources)

        # Refusals: a bad token, a room he is not in, a channel without CONNECT, bad input.
        code, body = await self.request("POST", "/livekit/jwt/sfu/get", {
            "room": voice, "openid_token": {**openid, "access_token": "nope"}})
        self.assertEqual((code, body["errcode"]), (401, "M_UNKNOWN_TOKEN"))
        private = (await self.ok("POST", f"{API}/servers/{q(space)}/channels",
                                 {"name": "P", "type": "voice", "private": True}, token=token))["id"]
        code, body = await self.request("POST", "/livekit/jwt/sfu/get", {"room": private, "openid_token": openid})
        self.assertEqual((code, body["errcode"]), (403, "M_FORBIDDEN"))
        await self.ok("PUT", f"{API}/channels/{q(voice)}/overwrites/member/{q(bob)}",
                      {"allow": "0", "deny": str(1 << 20)}, token=token)
        code, body = await self.request("POST", "/livekit/jwt/sfu/get", {"room": voice, "openid_token": openid})
        self.assertEqual((code, body["errcode"]), (403, "M_FORBIDDEN"))
        code, body = await self.request("POST", "/livekit/jwt/sfu/get", {"room": "general"})
        self.assertEqual((code, body["errcode"]), (400, "M_INVALID_PARAM"))

    @inline
    async def test_element_call_members_count_as_connected(self):
        (alice, token), (bob, bob_token), space, _general = await self.setup_server()
        voice = (await self.ok("POST", f"{API}/servers/{q(space)}/channels", {"name": "V", "type": "voice"},
                               token=token))["id"]
        key = q(f"_{alice}_ELEMENTCALL")
        await self.ok("PUT", f"{V3}/rooms/{q(voice)}/state/org.matrix.msc3401.call.member/{key}",
                      {"application": "m.call", "call_id": "", "device_id": "ELEMENTCALL", "scope": "m.room",
                       "focus_active": {"type": "livekit", "focus_selection": "oldest_membership"}}, token=token)
        states = await self.ok("GET", f"{API}/channels/{q(voice)}/voice/states", token=token)
        self.assertEqual([(s["user_id"], s["connected"]) for s in states], [(alice, True)])
        # A plain member announces their own membership (the power-level mirror lets whoever
        # may CONNECT), never someone else's.
        await self.ok("POST", f"{API}/channels/{q(voice)}/join", {}, token=bob_token)
        member = {"application": "m.call", "call_id": "", "device_id": "B", "scope": "m.room"}
        await self.ok("PUT", f"{V3}/rooms/{q(voice)}/state/org.matrix.msc3401.call.member/{q('_' + bob + '_B')}",
                      member, token=bob_token)
        code, body = await self.request("PUT", f"{V3}/rooms/{q(voice)}/state/org.matrix.msc3401.call.member/"
                                               f"{q('_' + alice + '_B')}", member, token=bob_token)
        self.assertEqual((code, body["errcode"]), (403, "M_FORBIDDEN"))
        states = await self.ok("GET", f"{API}/channels/{q(voice)}/voice/states", token=token)
        self.assertEqual(sorted(s["user_id"] for s in states), sorted([alice, bob]))
        await self.ok("PUT", f"{V3}/rooms/{q(voice)}/state/org.matrix.msc3401.call.member/{q('_' + bob + '_B')}",
                      {}, token=bob_token)
        # Leaving the call (empty content) takes them out.
        await self.ok("PUT", f"{V3}/rooms/{q(voice)}/state/org.matrix.msc3401.call.member/{key}", {}, token=token)
        self.assertEqual(await self.ok("GET", f"{API}/channels/{q(voice)}/voice/states", token=token), [])


class MatrixRtcNotConfiguredTests(ApiHelpers, HomeserverTestCase):
    @inline
    async def test_no_focus_without_livekit(self):
        body = await self.ok("GET", "/.well-known/matrix/client", token=None)
        self.assertNotIn("org.matrix.msc4143.rtc_foci", body)


class MatrixRtcAcrossInstancesTests(TwoServerTestCase):
    timeout = 120

    @inline
    async def test_a_user_of_another_instance_gets_a_token_through_their_homeserver(self):
        cfg = self.a.hs.config.livekit
        cfg.public_url, cfg.api_key, cfg.api_secret = "wss://lk", API_KEY, API_SECRET
        self.a.hs.voice = VoiceService(self.a.hs)
        server = await self.ok(self.a, "POST", f"{API}/servers", {"name": "Guild"}, self.alice)
        voice = (await self.ok(self.a, "POST", f"{API}/servers/{q(server['id'])}/channels",
                               {"name": "V", "type": "voice"}, self.alice))["id"]
        invite = await self.ok(self.a, "POST", f"{API}/servers/{q(server['id'])}/invites", {}, self.alice)
        await self.ok(self.b, "POST", f"{API}/invites/{invite['code']}?server={quote(self.a.server_name, safe='')}",
                      token=self.bob)
        await self.ok(self.b, "POST", f"{V3}/join/{q(voice)}", {}, self.bob)
        openid = await self.ok(self.b, "POST", f"{V3}/user/{q(self.bob_id)}/openid/request_token", {}, self.bob)
        self.assertEqual(openid["matrix_server_name"], self.b.server_name)
        answer = await self.ok(self.a, "POST", "/livekit/jwt/sfu/get", {"room": voice, "openid_token": openid})
        claims = lk.TokenVerifier(API_KEY, API_SECRET).verify(answer["jwt"])
        self.assertEqual((claims.identity, claims.video.room), (self.bob_id, voice))
        # B vouches only for B's users: a forged token is refused.
        status, body = await self.a.request("POST", "/livekit/jwt/sfu/get", {
            "room": voice, "openid_token": {**openid, "access_token": "forged"}})
        self.assertEqual((status, body["errcode"]), (401, "M_UNKNOWN_TOKEN"))
