"""Presence that follows the user (issue 9): idle after 5 minutes without client-reported
activity unless in voice, back online with activity, offline when a /sync client stops
polling; each transition visible on the gateway and in Matrix /sync. The transitions are
ordinary presence changes, so they reach other instances as the presence EDU
(tests/test_federation_edus.py shows one crossing).
The server's clock is moved forward instead of waiting; the sweep is run directly (it runs
every 15 s on its own)."""

from __future__ import annotations

from homeserver.handlers.presence_timers import IDLE_AFTER_MS, SYNC_GONE_AFTER_MS
from tests.support.api import V3, ApiHelpers, q
from tests.support.gateway import GatewayClient
from tests.support.server import HomeserverTestCase, inline


def advance(hs, ms: int) -> None:
    """Moves the server's clock forward by ``ms`` (for every later reading)."""
    clock = hs.clock
    base = clock.time_ms()
    start = type(clock).time_ms(clock)
    clock.time_ms = lambda: base + ms + (type(clock).time_ms(clock) - start)


class PresenceTimerTests(ApiHelpers, HomeserverTestCase):
    async def sync_presence(self, token: str, user_id: str) -> dict | None:
        body = await self.ok("GET", f"{V3}/sync?timeout=0&set_presence=offline", token=token)
        return next((e["content"] for e in body["presence"]["events"] if e["sender"] == user_id), None)

    @inline
    async def test_gateway_user_goes_idle_unless_active_or_in_voice(self):
        (alice, token), (bob, bob_token), _space, _general = await self.setup_server()
        watcher = await GatewayClient(self.hs.listening_port).opened()
        self.addCleanup(lambda: watcher.connector.disconnect())
        await watcher.identify(token)
        bob_socket = await GatewayClient(self.hs.listening_port).opened()
        self.addCleanup(lambda: bob_socket.connector.disconnect())
        await bob_socket.identify(bob_token)
        await watcher.dispatch("PRESENCE_UPDATE", lambda d: d["user_id"] == bob and d["status"] == "online")

        # Four minutes of quiet: still online.
        advance(self.hs, IDLE_AFTER_MS - 60_000)
        await self.hs.presence_timers.sweep()
        self.assertEqual((await self.sync_presence(token, bob))["presence"], "online")
        # Past five: idle, on the gateway and in /sync.
        advance(self.hs, 120_000)
        await self.hs.presence_timers.sweep()
        await watcher.dispatch("PRESENCE_UPDATE", lambda d: d["user_id"] == bob and d["status"] == "idle")
        self.assertEqual((await self.sync_presence(token, bob))["presence"], "unavailable")

        # Activity reported by the client: online again.
        def onlines():
            return [f for f in watcher.dispatches("PRESENCE_UPDATE")
                    if f["d"]["user_id"] == bob and f["d"]["status"] == "online"]
        before = len(onlines())
        bob_socket.send(3, {"status": "online"})
        await watcher.until(lambda: len(onlines()) > before, "bob online again on the gateway")
        self.assertEqual((await self.sync_presence(token, bob))["presence"], "online")

        # In voice: never idle.
        self.hs.voice.in_voice.add(bob)
        advance(self.hs, IDLE_AFTER_MS + 60_000)
        await self.hs.presence_timers.sweep()
        self.assertEqual((await self.sync_presence(token, bob))["presence"], "online")

    @inline
    async def test_a_sync_client_that_stops_polling_goes_offline(self):
        alice, token = await self.user("alice")
        bob, bob_token = await self.user("bob")
        room = await self.ok("POST", f"{V3}/createRoom", {"preset": "public_chat"}, token=token)
        await self.ok("POST", f"{V3}/join/{q(room['room_id'])}", {}, token=bob_token)
        await self.ok("GET", f"{V3}/sync?timeout=0&set_presence=online", token=bob_token)
        self.assertEqual((await self.sync_presence(token, bob))["presence"], "online")
        advance(self.hs, SYNC_GONE_AFTER_MS - 10_000)
        await self.hs.presence_timers.sweep()
        self.assertEqual((await self.sync_presence(token, bob))["presence"], "online")
        advance(self.hs, 20_000)
        await self.hs.presence_timers.sweep()
        self.assertEqual((await self.sync_presence(token, bob))["presence"], "offline")
