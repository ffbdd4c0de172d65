"""Voice channels through LiveKit (issue 9): tokens minted with livekit-api carry exactly the
grants the permissions allow (checked with livekit-api's own verifier); the state of who is
connected is room state every client reads (GET states, the gateway's VOICE_STATE_UPDATE,
Matrix room state); server mute, deafen, move and disconnect go to a LiveKit RoomService
double with a valid admin token before the state changes; one channel at a time; leaving
when the last gateway connection drops."""

from __future__ import annotations

from urllib.parse import quote

from livekit import api as lk
from twisted.internet import defer

from homeserver.drocsid import permissions as perms
from homeserver.drocsid.voice_rules import VOICE_STATE_EVENT, check_voice_state, livekit_grants
from tests.support.api import API, V3, ApiHelpers, q
from homeserver.voice.service import VoiceService
from tests.support.appservice import wait_until
from tests.support.federation import TwoServerTestCase
from tests.support.gateway import GatewayClient
from tests.support.livekit import API_KEY, API_SECRET, FakeLiveKit
from tests.support.server import HomeserverTestCase, inline
from twisted.trial import unittest

P = perms.P


def claims_of(token: str):
    return lk.TokenVerifier(API_KEY, API_SECRET).verify(token)


class VoiceRulesTests(unittest.TestCase):
    """The pure rules: who may write whose voice state."""

    bob, mod = "@bob:hs", "@mod:hs"
    key = perms.member_state_key(bob)
    on = {"connected": True, "self_mute": False, "self_deaf": False, "mute": False, "deaf": False, "streaming": False}

    def test_connecting_needs_connect(self):
        self.assertIsNone(check_voice_state(self.bob, self.key, self.on, None, int(P.CONNECT)))
        self.assertEqual(check_voice_state(self.bob, self.key, self.on, None, int(P.SPEAK)),
                         "missing permission CONNECT")

    def test_streaming_needs_stream(self):
        streaming = {**self.on, "streaming": True}
        self.assertEqual(check_voice_state(self.bob, self.key, streaming, self.on, int(P.CONNECT)),
                         "missing permission STREAM")
        self.assertIsNone(check_voice_state(self.bob, self.key, streaming, self.on, int(P.CONNECT | P.STREAM)))

    def test_a_user_cannot_lift_a_server_mute(self):
        muted = {**self.on, "mute": True}
        self.assertEqual(check_voice_state(self.bob, self.key, self.on, muted, int(P.CONNECT)),
                         "only moderators change mute")
        # Leaving is always allowed.
        self.assertIsNone(check_voice_state(self.bob, self.key, {}, muted, int(P.CONNECT)))

    def test_others_need_the_moderation_bits(self):
        muted = {**self.on, "mute": True}
        self.assertEqual(check_voice_state(self.mod, self.key, muted, self.on, 0), "missing permission MUTE_MEMBERS")
        self.assertIsNone(check_voice_state(self.mod, self.key, muted, self.on, int(P.MUTE_MEMBERS)))
        deaf = {**self.on, "deaf": True}
        self.assertEqual(check_voice_state(self.mod, self.key, deaf, self.on, int(P.MUTE_MEMBERS)),
                         "missing permission DEAFEN_MEMBERS")
        self.assertEqual(check_voice_state(self.mod, self.key, {}, self.on, int(P.MUTE_MEMBERS)),
                         "missing permission MOVE_MEMBERS")
        self.assertIsNone(check_voice_state(self.mod, self.key, {}, self.on, int(P.MOVE_MEMBERS)))
        self.assertEqual(check_voice_state(self.mod, self.key, self.on, None, perms.ALL),
                         "only the user connects themselves")
        self.assertEqual(check_voice_state(self.mod, self.key, {**self.on, "self_mute": True}, self.on, perms.ALL),
                         "only the user changes self_mute")

    def test_keys_name_a_member(self):
        self.assertIsNotNone(check_voice_state(self.bob, self.bob, self.on, None, perms.ALL))

    def test_grants_follow_speak_and_stream(self):
        self.assertEqual(livekit_grants(int(P.CONNECT | P.SPEAK | P.STREAM))["can_publish_sources"],
                         ["microphone", "camera", "screen_share", "screen_share_audio"])
        self.assertEqual(livekit_grants(int(P.CONNECT | P.STREAM))["can_publish_sources"],
                         ["camera", "screen_share", "screen_share_audio"])
        none = livekit_grants(int(P.CONNECT))
        self.assertEqual((none["can_publish"], none["can_publish_sources"], none["can_subscribe"]), (False, [], True))
        self.assertTrue(livekit_grants(0, dm=True)["can_publish"])


class VoiceTests(ApiHelpers, HomeserverTestCase):
    @inline
    async def setUp(self):
        self.livekit = FakeLiveKit()
        port = self.livekit.start()
        self.addCleanup(self.livekit.stop)
        self.config_overrides = {"livekit": {"url": f"ws://127.0.0.1:{port}", "public_url": "wss://voice.example.org",
                                             "api_key": API_KEY, "api_secret": API_SECRET}}
        await super().setUp()
        (self.alice, self.token), (self.bob, self.bob_token), self.space, self.general = await self.setup_server()
        self.voice = await self.channel("Lounge")

    async def channel(self, name: str) -> str:
        made = await self.ok("POST", f"{API}/servers/{q(self.space)}/channels", {"name": name, "type": "voice"},
                             token=self.token)
        return made["id"]

    async def join(self, channel: str, token: str, status: int = 200, **body):
        code, answer = await self.request("POST", f"{API}/channels/{q(channel)}/voice/join", body, token=token)
        self.assertEqual(code, status, answer)
        return answer

    async def states(self, channel: str, token: str | None = None) -> dict:
        found = await self.ok("GET", f"{API}/channels/{q(channel)}/voice/states", token=token or self.token)
        return {s["user_id"]: s for s in found}

    async def overwrite(self, channel: str, deny: int) -> None:
        await self.ok("PUT", f"{API}/channels/{q(channel)}/overwrites/member/{q(self.bob)}",
                      {"allow": "0", "deny": str(deny)}, token=self.token)

    @inline
    async def test_the_token_has_exactly_the_grants_the_permissions_allow(self):
        answer = await self.join(self.voice, self.bob_token)
        self.assertEqual((answer["url"], answer["room"]), ("wss://voice.example.org", self.voice))
        claims = claims_of(answer["token"])
        self.assertEqual(claims.identity, self.bob)
        self.assertEqual(claims.name, "bob")
        self.assertTrue(claims.video.room_join)
        self.assertEqual(claims.video.room, self.voice)
        self.assertTrue(claims.video.can_publish)
        self.assertEqual(claims.video.can_publish_sources, ["microphone", "camera", "screen_share",
                                                            "screen_share_audio"])
        self.assertTrue(claims.video.can_subscribe)
        self.assertFalse(claims.video.room_admin)
        with self.assertRaises(Exception):
            lk.TokenVerifier(API_KEY, "another-secret-entirely-long-enough-to-matter").verify(answer["token"])

        # Without SPEAK: no microphone; without STREAM too: nothing to publish, still listening.
        await self.overwrite(self.voice, int(P.SPEAK))
        claims = claims_of((await self.join(self.voice, self.bob_token))["token"])
        self.assertNotIn("microphone", claims.video.can_publish_sources)
        self.assertIn("screen_share", claims.video.can_publish_sources)
        await self.overwrite(self.voice, int(P.SPEAK | P.STREAM))
        claims = claims_of((await self.join(self.voice, self.bob_token))["token"])
        self.assertFalse(claims.video.can_publish)
        self.assertTrue(claims.video.can_subscribe)
        # STREAM is also what lets a user mark themselves streaming.
        code, answer = await self.request("PATCH", f"{API}/channels/{q(self.voice)}/voice/state", {"streaming": True},
                                          token=self.bob_token)
        self.assertEqual((code, answer["errcode"]), (403, "M_FORBIDDEN"))

        # Without CONNECT: no token, and nothing changes.
        await self.ok("POST", f"{API}/channels/{q(self.voice)}/voice/leave", {}, token=self.bob_token)
        await self.overwrite(self.voice, int(P.CONNECT))
        refused = await self.join(self.voice, self.bob_token, 403)
        self.assertEqual(refused["errcode"], "M_FORBIDDEN")
        self.assertNotIn(self.bob, await self.states(self.voice))
        # A text channel is not a voice channel.
        self.assertEqual((await self.join(self.general, self.bob_token, 400))["errcode"], "M_INVALID_PARAM")

    @inline
    async def test_state_is_room_state_and_one_channel_at_a_time(self):
        await self.join(self.voice, self.bob_token, self_mute=True)
        state = (await self.states(self.voice))[self.bob]
        self.assertEqual((state["connected"], state["self_mute"], state["mute"]), (True, True, False))
        # Matrix clients read the same thing from the room.
        content = await self.ok("GET", f"{V3}/rooms/{q(self.voice)}/state/{VOICE_STATE_EVENT}/"
                                       f"{q(perms.member_state_key(self.bob))}", token=self.token)
        self.assertTrue(content["connected"])
        other = await self.channel("Gaming")
        await self.join(other, self.bob_token)
        self.assertNotIn(self.bob, await self.states(self.voice))
        self.assertIn(self.bob, await self.states(other))
        removed = self.livekit.accepted("RemoveParticipant")
        self.assertEqual([(c["body"]["room"], c["body"]["identity"]) for c in removed], [(self.voice, self.bob)])
        await self.ok("POST", f"{API}/channels/{q(other)}/voice/leave", {}, token=self.bob_token)
        self.assertEqual(await self.states(other), {})

    @inline
    async def test_server_mute_move_and_disconnect_reach_livekit_and_every_client(self):
        socket = await GatewayClient(self.hs.listening_port).opened()
        self.addCleanup(lambda: socket.connector.disconnect())
        await socket.identify(self.token)
        await self.join(self.voice, self.bob_token)
        await socket.dispatch("VOICE_STATE_UPDATE", lambda d: d["user_id"] == self.bob and d["connected"])

        # bob lacks MUTE_MEMBERS: LiveKit is never asked.
        await self.join(self.voice, self.token)
        code, answer = await self.request("PATCH", f"{API}/servers/{q(self.space)}/members/{q(self.alice)}/voice",
                                          {"mute": True}, token=self.bob_token)
        self.assertEqual((code, answer["errcode"]), (403, "M_FORBIDDEN"))
        self.assertEqual(self.livekit.calls, [c for c in self.livekit.calls if c["method"] == "RemoveParticipant"])

        muted = await self.ok("PATCH", f"{API}/servers/{q(self.space)}/members/{q(self.bob)}/voice", {"mute": True},
                              token=self.token)
        self.assertTrue(muted["mute"])
        [call] = self.livekit.accepted("UpdateParticipant")
        self.assertEqual((call["body"]["room"], call["body"]["identity"]), (self.voice, self.bob))
        self.assertFalse(call["body"]["permission"].get("can_publish", False))
        self.assertTrue(call["body"]["permission"]["can_subscribe"])
        self.assertTrue(call["claims"].video.room_admin)
        update = await socket.dispatch("VOICE_STATE_UPDATE", lambda d: d["user_id"] == self.bob and d["mute"])
        self.assertEqual(update["d"]["channel_id"], self.voice)
        # bob cannot lift it himself, on any face.
        code, _ = await self.request("PUT", f"{V3}/rooms/{q(self.voice)}/state/{VOICE_STATE_EVENT}/"
                                            f"{q(perms.member_state_key(self.bob))}",
                                     {**(await self.states(self.voice))[self.bob], "mute": False,
                                      "connected": True}, token=self.bob_token)
        self.assertEqual(code, 403)
        self.assertTrue((await self.states(self.voice, self.bob_token))[self.bob]["mute"])

        # LiveKit failing: 502, and the state does not change.
        self.livekit.fail_with = 500
        code, answer = await self.request("PATCH", f"{API}/servers/{q(self.space)}/members/{q(self.bob)}/voice",
                                          {"deaf": True}, token=self.token)
        self.assertEqual((code, answer["errcode"]), (502, "M_UNKNOWN"))
        self.assertFalse((await self.states(self.voice))[self.bob]["deaf"])
        self.livekit.fail_with = None

        other = await self.channel("Stage")
        moved = await self.ok("PATCH", f"{API}/servers/{q(self.space)}/members/{q(self.bob)}/voice",
                              {"channel_id": other}, token=self.token)
        self.assertEqual(moved["channel_id"], other)
        self.assertTrue(moved["mute"])  # a move keeps the server mute
        [move] = self.livekit.accepted("MoveParticipant")
        self.assertEqual(move["body"]["destination_room"], other)
        self.assertNotIn(self.bob, await self.states(self.voice))
        await socket.dispatch("VOICE_STATE_UPDATE", lambda d: d["user_id"] == self.bob and d["channel_id"] == other)

        await self.ok("DELETE", f"{API}/servers/{q(self.space)}/members/{q(self.bob)}/voice", token=self.token)
        self.assertEqual(await self.states(other), {})
        self.assertIn((other, self.bob), [(c["body"]["room"], c["body"]["identity"])
                                          for c in self.livekit.accepted("RemoveParticipant")])
        await socket.dispatch("VOICE_STATE_UPDATE", lambda d: d["user_id"] == self.bob and not d["connected"])
        self.assertFalse([c for c in self.livekit.calls if c["refused"]])

    @inline
    async def test_the_last_gateway_connection_dropping_leaves_voice(self):
        socket = await GatewayClient(self.hs.listening_port).opened()
        self.addCleanup(lambda: socket.connector.disconnect())
        await socket.identify(self.bob_token)
        await self.join(self.voice, self.bob_token)
        self.assertIn(self.bob, await self.states(self.voice))
        socket.drop()
        await wait_until(lambda: defer.ensureDeferred(self._gone()), "bob to leave voice")

    async def _gone(self) -> bool:
        return self.bob not in await self.states(self.voice)

    @inline
    async def test_calls_in_a_dm(self):
        dm = await self.ok("POST", f"{API}/dms", {"recipient_id": self.bob}, token=self.token)
        await self.ok("POST", f"{V3}/join/{q(dm['id'])}", {}, token=self.bob_token)
        claims = claims_of((await self.join(dm["id"], self.bob_token))["token"])
        self.assertEqual(claims.video.room, dm["id"])
        self.assertTrue(claims.video.can_publish)
        states = await self.states(dm["id"], self.bob_token)
        self.assertEqual(states[self.bob]["server_id"], None)


class VoiceNotConfiguredTests(ApiHelpers, HomeserverTestCase):
    @inline
    async def test_503_without_livekit_keys(self):
        (_a, token), _b, space, _general = await self.setup_server()
        voice = await self.ok("POST", f"{API}/servers/{q(space)}/channels", {"name": "V", "type": "voice"},
                              token=token)
        code, answer = await self.request("POST", f"{API}/channels/{q(voice['id'])}/voice/join", {}, token=token)
        self.assertEqual((code, answer["errcode"]), (503, "M_UNKNOWN"))


class VoiceAcrossInstancesTests(TwoServerTestCase):
    """A's voice channel seen from B: who is connected, a server mute and a disconnect
    reach bob of B through the room's state, on B's /api/v1 and B's gateway."""
    timeout = 180

    @inline
    async def test_another_instance_sees_voice_state(self):
        livekit = FakeLiveKit()
        port = livekit.start()
        self.addCleanup(livekit.stop)
        # LiveKit runs beside A: its keys in A's configuration.
        cfg = self.a.hs.config.livekit
        cfg.url, cfg.public_url, cfg.api_key, cfg.api_secret = f"ws://127.0.0.1:{port}", "wss://lk", API_KEY, API_SECRET
        self.a.hs.voice = VoiceService(self.a.hs)

        carol = await self.a.register("carol")
        carol_id = self.a.user_id("carol")
        server = await self.ok(self.a, "POST", f"{API}/servers", {"name": "Guild"}, self.alice)
        space = server["id"]
        voice = (await self.ok(self.a, "POST", f"{API}/servers/{q(space)}/channels", {"name": "Lounge", "type": "voice"},
                               self.alice))["id"]
        invite = await self.ok(self.a, "POST", f"{API}/servers/{q(space)}/invites", {}, self.alice)
        await self.ok(self.a, "POST", f"{API}/invites/{invite['code']}", {}, carol)
        a_name = quote(self.a.server_name, safe="")
        await self.ok(self.b, "POST", f"{API}/invites/{invite['code']}?server={a_name}", token=self.bob)
        await self.ok(self.b, "POST", f"{V3}/join/{q(voice)}", {}, self.bob)
        socket = await GatewayClient(self.b.hs.listening_port).opened()
        self.addCleanup(lambda: socket.connector.disconnect())
        await socket.identify(self.bob)

        async def seen_on_b(check) -> bool:
            states = await self.ok(self.b, "GET", f"{API}/channels/{q(voice)}/voice/states", token=self.bob)
            return check({s["user_id"]: s for s in states})

        await self.ok(self.a, "POST", f"{API}/channels/{q(voice)}/voice/join", {}, carol)
        await self.b.wait_for(lambda: seen_on_b(lambda s: carol_id in s), what="carol connected, seen on B")
        await socket.dispatch("VOICE_STATE_UPDATE", lambda d: d["user_id"] == carol_id and d["connected"])

        await self.ok(self.a, "PATCH", f"{API}/servers/{q(space)}/members/{q(carol_id)}/voice", {"mute": True},
                      self.alice)
        await self.b.wait_for(lambda: seen_on_b(lambda s: s.get(carol_id, {}).get("mute")), what="the mute on B")
        await socket.dispatch("VOICE_STATE_UPDATE", lambda d: d["user_id"] == carol_id and d["mute"])

        await self.ok(self.a, "DELETE", f"{API}/servers/{q(space)}/members/{q(carol_id)}/voice", token=self.alice)
        await self.b.wait_for(lambda: seen_on_b(lambda s: carol_id not in s), what="the disconnect on B")
        self.assertEqual([c["method"] for c in livekit.accepted("UpdateParticipant") + livekit.accepted(
            "RemoveParticipant")], ["UpdateParticipant", "RemoveParticipant"])


class CallMemberRulesTests(unittest.TestCase):
    def test_a_call_membership_is_ones_own_and_needs_connect(self):
        from homeserver.drocsid.voice_rules import check_call_member
        live = {"application": "m.call", "device_id": "D"}
        self.assertIsNone(check_call_member("@bob:hs", "_@bob:hs_D", live, int(P.CONNECT)))
        self.assertIsNone(check_call_member("@bob:hs", "@bob:hs_D", live, int(P.CONNECT)))
        self.assertEqual(check_call_member("@bob:hs", "_@alice:hs_D", live, perms.ALL),
                         "a call membership names its sender")
        self.assertEqual(check_call_member("@bob:hs", "_@bob:hs_D", live, 0), "missing permission CONNECT")
        self.assertIsNone(check_call_member("@bob:hs", "_@bob:hs_D", {}, 0))  # leaving
