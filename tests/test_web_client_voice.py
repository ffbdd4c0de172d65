"""Voice in the web client (tests/e2e/voice.mjs): joining by clicking a voice channel loads
livekit-client from the homeserver and shows the member in the channel to the others, with
their mute, until they disconnect. LiveKit's signalling port here accepts connections and
never answers (no LiveKit server runs in the test), so the media path is not exercised."""

from __future__ import annotations

from twisted.internet import protocol, reactor

from tests.support.api import API, V3, q
from tests.support.livekit import API_KEY, API_SECRET, FakeLiveKit
from tests.support.server import inline
from tests.test_web_client import PASSWORD, BrowserTestCase


class _Silent(protocol.Protocol):
    """Accepts and says nothing: a LiveKit that never finishes the handshake."""


class VoiceBrowserTests(BrowserTestCase):
    @inline
    async def setUp(self):
        self.livekit = FakeLiveKit()
        api_port = self.livekit.start()
        self.addCleanup(self.livekit.stop)
        factory = protocol.Factory.forProtocol(_Silent)
        self.signalling = reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(self.signalling.stopListening)
        self.config_overrides = {"livekit": {
            "url": f"ws://127.0.0.1:{api_port}", "public_url": f"ws://127.0.0.1:{self.signalling.getHost().port}",
            "api_key": API_KEY, "api_secret": API_SECRET}}
        await super().setUp()

    @inline
    async def test_joining_muting_and_leaving_voice_in_the_browser(self):
        alice, token = await self.user("alice")
        bob, bob_token = await self.user("bob")
        server = await self.ok("POST", f"{API}/servers", {"name": "Voice"}, token=token)
        space, general = server["id"], server["channels"][0]["id"]
        voice = await self.ok("POST", f"{API}/servers/{q(space)}/channels", {"name": "Lounge", "type": "voice"},
                              token=token)
        await self.ok("POST", f"{V3}/rooms/{q(space)}/invite", {"user_id": bob}, token=token)
        await self.ok("POST", f"{V3}/join/{q(space)}", {}, token=bob_token)
        await self.ok("POST", f"{API}/channels/{q(general)}/join", {}, token=bob_token)
        report = await self.run_scenario("voice.mjs", {
            "base": self.base, "shots": self.screenshot_dir("voice"), "password": PASSWORD, "serverId": space,
            "generalId": general, "voiceId": voice["id"], "alice": {"name": "alice", "id": alice},
            "bob": {"name": "bob", "id": bob}})
        self.assertEqual(report["livekitLoaded"], "Room")
        self.assertTrue(report["muteSeen"])
        self.assertEqual(report["muteButtonPressed"], "true")
        self.assertTrue(report["panelHidden"])
        self.assertEqual(report["pageErrors"], [])
        # The homeserver's record: bob is not in the channel any more.
        states = await self.ok("GET", f"{API}/channels/{q(voice['id'])}/voice/states", token=token)
        self.assertEqual(states, [])
