"""The gateway at /gateway: real WebSocket clients against a running homeserver, sends
over real HTTP, on both engines (HELLO / IDENTIFY / READY, heartbeats, dispatches and
who gets them, presence, RESUME after a dropped socket and after a restart)."""

from __future__ import annotations

import json

from twisted.internet import defer, reactor

from homeserver.app import Homeserver
from homeserver.config import load_config
from tests.support.api import API, V3, ApiHelpers, q
from tests.support.gateway import GatewayClient
from tests.support.server import HomeserverTestCase, HttpClient, inline

class GatewayTests(ApiHelpers):
    async def connect(self) -> GatewayClient:
        client = await GatewayClient(self.hs.listening_port).opened()
        self.addCleanup(lambda: client.connector.disconnect())
        return client

    async def session(self, token: str) -> tuple[GatewayClient, dict]:
        client = await self.connect()
        return client, await client.identify(token)

    async def send(self, channel: str, token: str, content: str) -> dict:
        return await self.ok("POST", f"{API}/channels/{q(channel)}/messages", {"content": content}, token=token)

    # -- connecting -------------------------------------------------------------------

    @inline
    async def test_hello_identify_ready(self):
        (alice, token), (bob, _), space, channel = await self.setup_server()
        private = await self.ok("POST", f"{API}/servers/{q(space)}/channels", {"name": "secret", "private": True},
                                token=token)
        client = await self.connect()
        await client.until(lambda: client.frames, "HELLO")
        self.assertEqual(client.frames[0], {"op": 10, "d": {"heartbeat_interval": 41250}})
        ready = await client.identify(token)
        frame = client.dispatches("READY")[0]
        self.assertEqual(frame["s"], 1)
        self.assertRegex(ready["session_id"], r"^[0-9a-f]{32}$")
        self.assertEqual(ready["user"], {"id": alice, "display_name": "alice"})
        [server] = ready["servers"]
        listed = await self.ok("GET", f"{API}/servers/{q(space)}", token=token)
        self.assertEqual({k: v for k, v in server.items() if k != "roles"}, listed)
        self.assertEqual({c["id"] for c in server["channels"]}, {channel, private["id"]})
        [everyone] = server["roles"]
        self.assertEqual((everyone["id"], everyone["server_id"], everyone["position"]), ("", space, 0))
        self.assertTrue(everyone["permissions"].isdigit())
        self.assertIsInstance(ready["dms"], list)
        self.assertIsInstance(ready["relationships"], list)
        self.assertIn(channel, [r["channel_id"] for r in ready["read_states"]])
        for state in ready["read_states"]:
            self.assertEqual(set(state), {"channel_id", "last_read_message_id", "mention_count", "unread_count"})

        # bob's READY holds the server without the private channel.
        _, bob_ready = await self.session((await self.login("bob"))[1]["access_token"])
        self.assertEqual([c["id"] for c in bob_ready["servers"][0]["channels"]], [channel])

    @inline
    async def test_bad_token_is_an_invalid_session(self):
        client = await self.connect()
        await client.until(lambda: client.frames, "HELLO")
        client.send(2, {"token": "nonsense"})
        self.assertEqual(await client.closed(), 4004)
        self.assertEqual(client.frames[1], {"op": 9, "d": False})

    @inline
    async def test_protocol_errors_close_with_4xxx(self):
        _, token = await self.user("alice")
        cases = [(b"not json", 4002), (b"[1, 2]", 4002), (json.dumps({"op": 42}).encode(), 4001),
                 (json.dumps({"op": 3, "d": {"status": "online"}}).encode(), 4003)]
        for raw, code in cases:
            client = await self.connect()
            await client.until(lambda: client.frames, "HELLO")
            client.send_raw(raw)
            self.assertEqual(await client.closed(), code, raw)
        client = await self.connect()
        await client.identify(token)
        client.send(2, {"token": token})
        self.assertEqual(await client.closed(), 4005)
        client = await self.connect()
        await client.identify(token)
        client.send(3, {"status": "sleeping"})
        self.assertEqual(await client.closed(), 4006)

    @inline
    async def test_heartbeat_is_acknowledged(self):
        _, token = await self.user("alice")
        client, _ = await self.session(token)
        client.send(1, 1)
        await client.until(lambda: any(f.get("op") == 11 for f in client.frames), "HEARTBEAT_ACK")
        self.assertIsNone(client.close_code)

    # -- dispatches -------------------------------------------------------------------

    @inline
    async def test_messages_edits_deletes_and_reactions(self):
        (alice, token), (bob, bob_token), space, channel = await self.setup_server()
        client, _ = await self.session(bob_token)
        sent = await self.send(channel, token, "hello **there**")
        created = await client.dispatch("MESSAGE_CREATE")
        self.assertEqual(created["d"], sent)
        messages = f"{API}/channels/{q(channel)}/messages/{q(sent['id'])}"
        edited = await self.ok("PATCH", messages, {"content": "edited"}, token=token)
        update = await client.dispatch("MESSAGE_UPDATE")
        self.assertEqual(update["d"]["content"], "edited")
        self.assertEqual(update["d"]["edited_at"], edited["edited_at"])
        await self.ok("PUT", f"{messages}/reactions/{q('👍')}", None, token=bob_token)
        reaction = await client.dispatch("REACTION_ADD")
        self.assertEqual(reaction["d"], {"channel_id": channel, "server_id": space, "message_id": sent["id"],
                                         "user_id": bob, "emoji": "👍"})
        await self.request("DELETE", f"{messages}/reactions/{q('👍')}", token=bob_token)
        removed = await client.dispatch("REACTION_REMOVE")
        self.assertEqual(removed["d"]["user_id"], bob)
        await self.request("DELETE", messages, token=token)
        deleted = await client.dispatch("MESSAGE_DELETE")
        self.assertEqual(deleted["d"], {"id": sent["id"], "channel_id": channel, "server_id": space})
        seqs = [f["s"] for f in client.dispatches() if "s" in f]
        self.assertEqual(seqs, sorted(seqs))
        self.assertEqual(len(seqs), len(set(seqs)))
        self.assertEqual(seqs[0], 1)

    @inline
    async def test_private_channel_messages_reach_only_those_who_may_view(self):
        (alice, token), (bob, bob_token), space, channel = await self.setup_server()
        private = (await self.ok("POST", f"{API}/servers/{q(space)}/channels", {"name": "secret", "private": True},
                                 token=token))["id"]
        owner, _ = await self.session(token)
        member, _ = await self.session(bob_token)
        secret = await self.send(private, token, "owners only")
        public = await self.send(channel, token, "everyone")
        # The owner gets both, in order; bob gets the public one only.
        await owner.dispatch("MESSAGE_CREATE", lambda d: d["id"] == public["id"])
        self.assertEqual([f["d"]["id"] for f in owner.dispatches("MESSAGE_CREATE")], [secret["id"], public["id"]])
        await member.dispatch("MESSAGE_CREATE", lambda d: d["id"] == public["id"])
        self.assertEqual([f["d"]["id"] for f in member.dispatches("MESSAGE_CREATE")], [public["id"]])
        self.assertNotIn(private, json.dumps(member.frames))

    @inline
    async def test_channel_and_role_changes(self):
        (alice, token), (bob, bob_token), space, channel = await self.setup_server()
        member, _ = await self.session(bob_token)
        created = await self.ok("POST", f"{API}/servers/{q(space)}/channels", {"name": "news"}, token=token)
        got = await member.dispatch("CHANNEL_CREATE", lambda d: d["id"] == created["id"])
        self.assertEqual(got["d"]["name"], "news")
        await self.ok("PATCH", f"{API}/channels/{q(created['id'])}", {"name": "headlines"}, token=token)
        await member.dispatch("CHANNEL_UPDATE", lambda d: d["name"] == "headlines")
        await self.ok("PUT", f"{V3}/rooms/{q(space)}/state/io.drocsid.role/mods",
                      {"name": "Mods", "permissions": "8192", "position": 1, "color": 255}, token=token)
        role = await member.dispatch("ROLE_CREATE")
        self.assertEqual(role["d"], {"id": "mods", "server_id": space, "name": "Mods", "color": 255, "hoist": False,
                                     "position": 1, "permissions": "8192", "mentionable": False})
        await self.ok("PUT", f"{V3}/rooms/{q(space)}/state/io.drocsid.member/{q('member:' + bob)}",
                      {"roles": ["mods"]}, token=token)
        update = await member.dispatch("MEMBER_ROLE_UPDATE")
        self.assertEqual(update["d"], {"server_id": space, "user_id": bob, "role_ids": ["mods"]})
        await self.ok("PATCH", f"{API}/servers/{q(space)}", {"name": "Renamed"}, token=token)
        await member.dispatch("SERVER_UPDATE", lambda d: d["name"] == "Renamed")
        await self.ok("DELETE", f"{API}/channels/{q(created['id'])}", token=token)
        gone = await member.dispatch("CHANNEL_DELETE")
        self.assertEqual(gone["d"], {"id": created["id"], "server_id": space})
        # A private channel is not announced to those who cannot see it.
        owner, _ = await self.session(token)
        private = await self.ok("POST", f"{API}/servers/{q(space)}/channels", {"name": "secret", "private": True},
                                token=token)
        await owner.dispatch("CHANNEL_CREATE", lambda d: d["id"] == private["id"])
        marker = await self.send(channel, token, "after the private channel")
        await member.dispatch("MESSAGE_CREATE", lambda d: d["id"] == marker["id"])
        self.assertNotIn(private["id"], json.dumps(member.frames))

    @inline
    async def test_typing_reaches_viewers(self):
        (alice, token), (bob, bob_token), space, channel = await self.setup_server()
        member, _ = await self.session(bob_token)
        await self.ok("PUT", f"{V3}/rooms/{q(channel)}/typing/{q(alice)}", {"typing": True, "timeout": 5000},
                      token=token)
        typing = await member.dispatch("TYPING_START")
        self.assertEqual((typing["d"]["channel_id"], typing["d"]["user_id"]), (channel, alice))
        self.assertNotIn("s", typing)

    @inline
    async def test_presence_update_reaches_server_members(self):
        (alice, token), (bob, bob_token), space, channel = await self.setup_server()
        watcher, _ = await self.session(token)
        client, _ = await self.session(bob_token)
        client.send(3, {"status": "dnd", "custom_status": "busy"})
        got = await watcher.dispatch("PRESENCE_UPDATE", lambda d: d["user_id"] == bob and d["status"] == "dnd")
        self.assertEqual(got["d"], {"user_id": bob, "status": "dnd", "custom_status": "busy"})
        client.send(3, {"status": "invisible"})
        await watcher.dispatch("PRESENCE_UPDATE", lambda d: d["user_id"] == bob and d["status"] == "offline")
        client.send(3, {"status": "idle"})
        await watcher.dispatch("PRESENCE_UPDATE", lambda d: d["user_id"] == bob and d["status"] == "idle")

    @inline
    async def test_own_read_receipt_is_acked(self):
        (alice, token), (bob, bob_token), space, channel = await self.setup_server()
        client, _ = await self.session(bob_token)
        sent = await self.send(channel, token, "read me")
        await self.ok("POST", f"{V3}/rooms/{q(channel)}/receipt/m.read/{q(sent['id'])}", {}, token=bob_token)
        ack = await client.dispatch("MESSAGE_ACK")
        self.assertEqual(ack["d"], {"channel_id": channel, "message_id": sent["id"]})

    @inline
    async def test_dms_reach_their_members_only(self):
        alice, token = await self.user("alice")
        bob, bob_token = await self.user("bob")
        carol, carol_token = await self.user("carol")
        recipient, _ = await self.session(bob_token)
        outsider, _ = await self.session(carol_token)
        dm = await self.ok("POST", f"{API}/dms", {"recipient_id": bob}, token=token)
        created = await recipient.dispatch("DM_CHANNEL_CREATE", lambda d: d["id"] == dm["id"])
        self.assertEqual([r["id"] for r in created["d"]["recipients"]], [alice])
        sent = await self.send(dm["id"], token, "psst")
        got = await recipient.dispatch("MESSAGE_CREATE")
        self.assertEqual(got["d"], sent)
        # carol shares nothing with them: the only thing she gets is her own presence.
        public = await self.ok("POST", f"{API}/servers", {"name": "Mine"}, token=carol_token)
        await outsider.dispatch("SERVER_CREATE", lambda d: d["id"] == public["id"])
        self.assertNotIn(dm["id"], json.dumps(outsider.frames))

    @inline
    async def test_relationship_updates(self):
        alice, token = await self.user("alice")
        bob, bob_token = await self.user("bob")
        client, ready = await self.session(bob_token)
        self.assertEqual(ready["relationships"], [])
        await self.ok("PUT", f"{API}/relationships/{q(bob)}", {}, token=token)
        got = await client.dispatch("RELATIONSHIP_UPDATE")
        self.assertEqual((got["d"]["user_id"], got["d"]["target_id"]), (bob, alice))
        self.assertIsNotNone(got["d"]["rel_type"])

    # -- resume -----------------------------------------------------------------------

    async def resume_check(self, restart: bool, acknowledge: bool):
        (alice, token), (bob, bob_token), space, channel = await self.setup_server()
        client, ready = await self.session(bob_token)
        first = await self.send(channel, token, "before the drop")
        await client.dispatch("MESSAGE_CREATE", lambda d: d["id"] == first["id"])
        last_seq = max(f["s"] for f in client.dispatches() if "s" in f)
        if acknowledge:
            # The session's checkpoint moves here, and nothing before it is kept.
            client.send(1, last_seq)
            await client.until(lambda: any(f.get("op") == 11 for f in client.frames), "HEARTBEAT_ACK")
        client.drop()
        await client.closed()
        await self.hs.gateway._sweep()  # saves checkpoints, prunes what is before them
        missed = [(await self.send(channel, token, f"missed {i}"))["id"] for i in range(5)]
        if restart:
            await self.restart()
            token = (await self.login("alice"))[1]["access_token"]
            missed += [(await self.send(channel, token, f"after restart {i}"))["id"] for i in range(3)]
        again = await self.connect()
        await again.until(lambda: again.frames, "HELLO")
        if acknowledge:
            # Before the acknowledged sequence: the server no longer has it.
            again.send(6, {"token": bob_token, "session_id": ready["session_id"], "seq": last_seq - 1})
            await again.until(lambda: {"op": 9, "d": False} in again.frames, "INVALID_SESSION")
        again.send(6, {"token": bob_token, "session_id": ready["session_id"], "seq": last_seq})
        await again.dispatch("RESUMED")
        created = [f for f in again.dispatches("MESSAGE_CREATE")]
        self.assertEqual([f["d"]["id"] for f in created], missed)
        seqs = [f["s"] for f in again.dispatches() if "s" in f]
        self.assertEqual(seqs, sorted(set(seqs)))
        self.assertGreater(seqs[0], last_seq)
        # And the session goes on live.
        later = await self.send(channel, token, "live again")
        got = await again.dispatch("MESSAGE_CREATE", lambda d: d["id"] == later["id"])
        self.assertGreater(got["s"], max(seqs))
        self.assertEqual(len(again.dispatches("MESSAGE_CREATE")), len(missed) + 1)

    async def restart(self):
        await self.hs.stop()
        self.hs = Homeserver(load_config(self.config_path, environ={}), reactor)
        await self.hs.start()
        self.addCleanup(lambda hs=self.hs: defer.ensureDeferred(hs.stop()))
        await self.client.close()
        self.client = HttpClient(f"http://127.0.0.1:{self.hs.listening_port}")
        self.addCleanup(lambda client=self.client: defer.ensureDeferred(client.close()))

    @inline
    async def test_resume_after_a_dropped_socket_replays_what_was_missed(self):
        await self.resume_check(restart=False, acknowledge=False)

    @inline
    async def test_resume_after_an_acknowledged_drop(self):
        await self.resume_check(restart=False, acknowledge=True)

    @inline
    async def test_resume_after_a_restart_replays_what_was_missed(self):
        await self.resume_check(restart=True, acknowledge=False)

    @inline
    async def test_resume_after_an_acknowledged_restart(self):
        await self.resume_check(restart=True, acknowledge=True)

    @inline
    async def test_resume_with_unknown_session_or_seq_is_invalid(self):
        _, token = await self.user("alice")
        client, ready = await self.session(token)
        other = await self.connect()
        await other.until(lambda: other.frames, "HELLO")
        other.send(6, {"token": token, "session_id": "0" * 32, "seq": 1})
        await other.until(lambda: {"op": 9, "d": False} in other.frames, "INVALID_SESSION")
        other.send(6, {"token": token, "session_id": ready["session_id"], "seq": 999})
        await other.until(lambda: other.frames.count({"op": 9, "d": False}) == 2, "INVALID_SESSION")
        # The socket stays open for a fresh IDENTIFY.
        self.assertIsNone(other.close_code)
        again = await other.identify(token)
        self.assertNotEqual(again["session_id"], ready["session_id"])


class ShortHeartbeatTests(ApiHelpers):
    config_overrides = {"gateway": {"heartbeat_interval_ms": 200}}

    @inline
    async def test_missed_heartbeat_closes_the_socket(self):
        _, token = await self.user("alice")
        client = await GatewayClient(self.hs.listening_port).opened()
        self.addCleanup(lambda: client.connector.disconnect())
        await client.until(lambda: client.frames, "HELLO")
        self.assertEqual(client.frames[0]["d"], {"heartbeat_interval": 200})
        self.assertEqual(await client.closed(), 4009)


class GatewaySqliteTests(GatewayTests, HomeserverTestCase):
    engine = "sqlite"


class GatewayPostgresTests(GatewayTests, HomeserverTestCase):
    engine = "postgres"


class ShortHeartbeatSqliteTests(ShortHeartbeatTests, HomeserverTestCase):
    engine = "sqlite"



class SessionLimitTests(ApiHelpers):
    config_overrides = {"gateway": {"max_sessions_per_user": 2}}

    async def connect(self) -> GatewayClient:
        client = await GatewayClient(self.hs.listening_port).opened()
        self.addCleanup(lambda: client.connector.disconnect())
        return client

    @inline
    async def test_sessions_per_user_are_limited(self):
        _, token = await self.user("alice")
        first, second = await self.connect(), await self.connect()
        await first.identify(token)
        await second.identify(token)
        third = await self.connect()
        await third.until(lambda: third.frames, "HELLO")
        third.send(2, {"token": token})
        self.assertEqual(await third.closed(), 4008)
        # A detached session gives way to a new one.
        first.drop()
        await first.closed()
        fourth = await self.connect()
        await fourth.identify(token)

    @inline
    async def test_plain_http_on_the_gateway_path(self):
        self.assertMatrixError(await self.request("GET", "/gateway"), 426, "M_UNKNOWN")
        status, _ = await self.request("GET", "/_matrix/client/versions")
        self.assertEqual(status, 200)


class SessionLimitSqliteTests(SessionLimitTests, HomeserverTestCase):
    engine = "sqlite"
