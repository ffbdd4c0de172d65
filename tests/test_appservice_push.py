"""Homeserver -> application service: transactions (persisted, ordered, retried with the
same body, resumed after a restart), ephemeral events, user and alias queries, ping.

A fake application service (tests.support.appservice) records what a bridge would see."""

from __future__ import annotations

import os

from twisted.internet import defer, reactor

from appservice.client import AppServiceError
from homeserver.app import Homeserver
from homeserver.config import load_config
from tests.support.api import q
from tests.support.appservice import FakeAppService, wait_until
from tests.support.server import HomeserverTestCase, HttpClient, inline, user_path

HS_TOKEN = "hs-token-secret"
AS_TOKEN = "as-token-secret"


def registration_yaml(service_id: str, url: str, *, suffix: str = "", ephemeral: bool = False,
                      to_device: bool = False) -> str:
    return f"""
id: {service_id}
url: {url}
as_token: {AS_TOKEN}{suffix}
hs_token: {HS_TOKEN}{suffix}
sender_localpart: {service_id}bot
rate_limited: false
receive_ephemeral: {'true' if ephemeral else 'false'}
org.matrix.msc2409.push_to_device: {'true' if to_device else 'false'}
namespaces:
  users:
    - regex: "@_bridge_.*"
      exclusive: false
  aliases:
    - regex: "#_bridge_.*"
      exclusive: false
  rooms: []
"""


class AppServiceTestBase:
    """Starts fake services before the homeserver, which reads their registrations."""

    services: tuple = (("bridge", False),)   # (id, receive_ephemeral[, receive_to_device])

    @inline
    async def setUp(self):
        self.fakes: dict[str, FakeAppService] = {}
        base = os.path.abspath(self.mktemp())
        os.makedirs(base)
        files = []
        for index, (service_id, ephemeral, *to_device) in enumerate(self.services):
            fake = FakeAppService()
            fake.start()
            self.addCleanup(lambda fake=fake: defer.ensureDeferred(fake.stop()))
            self.fakes[service_id] = fake
            path = os.path.join(base, f"{service_id}.yaml")
            with open(path, "w") as handle:
                handle.write(registration_yaml(service_id, fake.url, suffix="" if index == 0 else f"-{index}",
                                               ephemeral=ephemeral, to_device=bool(to_device and to_device[0])))
            files.append(path)
        self.fake = self.fakes[self.services[0][0]]
        self.config_overrides = {"appservice": {"config_files": files}}
        await HomeserverTestCase.setUp(self)
        self._fast_retries()

    def _fast_retries(self):
        self.hs.appservice_sender.retry_min_ms = 20
        self.hs.appservice_sender.retry_max_ms = 200

    async def restart(self):
        await self.hs.stop()
        self.hs = Homeserver(load_config(self.config_path, environ={}), reactor)
        await self.hs.start()
        self._fast_retries()
        self.addCleanup(lambda hs=self.hs: defer.ensureDeferred(hs.stop()))
        await self.client.close()
        self.client = HttpClient(f"http://127.0.0.1:{self.hs.listening_port}")
        self.addCleanup(lambda client=self.client: defer.ensureDeferred(client.close()))

    # -- helpers -----------------------------------------------------------------------

    async def user(self, name: str) -> tuple[str, str]:
        body = await self.register(name)
        return body["user_id"], body["access_token"]

    async def ok(self, method, path, body=None, *, token, **kwargs):
        status, answer = await self.request(method, path, body, token=token, **kwargs)
        self.assertEqual(status, 200, answer)
        return answer

    async def room_with_ghost(self, token: str, ghost_token: str, ghost_id: str) -> str:
        room_id = (await self.ok("POST", "/_matrix/client/v3/createRoom", {}, token=token))["room_id"]
        await self.ok("POST", f"/_matrix/client/v3/rooms/{q(room_id)}/invite", {"user_id": ghost_id}, token=token)
        await self.ok("POST", f"/_matrix/client/v3/rooms/{q(room_id)}/join", {}, token=ghost_token)
        return room_id

    async def send(self, room_id: str, token: str, text: str) -> str:
        self._txn = getattr(self, "_txn", 0) + 1
        body = await self.ok("PUT", f"/_matrix/client/v3/rooms/{q(room_id)}/send/m.room.message/t{self._txn}",
                             {"msgtype": "m.text", "body": text}, token=token)
        return body["event_id"]

    async def stored_event_ids(self) -> list[str]:
        rows = await self.hs.db.run_interaction("test", lambda txn: txn.select_all(
            "SELECT body FROM appservice_txns ORDER BY service_id, txn_id"))
        import json
        return [e["event_id"] for (text,) in rows for e in json.loads(text)["events"]]

    async def drained(self, fake: FakeAppService, event_id: str, service_id: str = "bridge") -> None:
        """Wait until the service took ``event_id`` and the homeserver saw it take it."""
        await wait_until(lambda: event_id in [e["event_id"] for e in fake.delivered_events()],
                         f"{event_id} delivered")

        async def empty():
            return await self.hs.appservice_sender.pending_count(service_id) == 0
        await wait_until(empty, "the queue to empty")

    def check_delivery(self, fake: FakeAppService, expected: list[str]) -> None:
        """Everything expected arrived once, in order; no transaction ID reused with
        another body; IDs increase in the order first sent."""
        delivered = [e["event_id"] for e in fake.delivered_events()]
        self.assertEqual([e for e in delivered if e in expected], expected)
        self.assertEqual(len(delivered), len(set(delivered)), delivered)
        bodies: dict[str, dict] = {}
        order: list[int] = []
        for txn_id, body in fake.transactions(delivered=False):
            if txn_id in bodies:
                self.assertEqual(bodies[txn_id], body, f"transaction {txn_id} changed on retry")
            else:
                bodies[txn_id] = body
                order.append(int(txn_id))
        self.assertEqual(order, sorted(order))
        delivered_ids = [txn_id for txn_id, _ in fake.transactions()]
        self.assertEqual(len(delivered_ids), len(set(delivered_ids)), delivered_ids)
        for entry in fake.requests:
            self.assertEqual(entry["auth"], f"Bearer {HS_TOKEN}".encode())


class DeliveryTests(AppServiceTestBase):
    @inline
    async def test_message_in_a_room_with_a_ghost_arrives_with_the_hs_token(self):
        alice, alice_token = await self.user("alice")
        ghost, ghost_token = await self.user("_bridge_bob")
        _, carol_token = await self.user("carol")
        # A room the service has nobody in: its events never reach the service.
        private = (await self.ok("POST", "/_matrix/client/v3/createRoom", {}, token=carol_token))["room_id"]
        hidden = await self.send(private, carol_token, "not for bridges")
        room_id = await self.room_with_ghost(alice_token, ghost_token, ghost)
        event_id = await self.send(room_id, alice_token, "hello bridge")
        await wait_until(lambda: any(e["event_id"] == event_id for e in self.fake.delivered_events()),
                         "the message to reach the service")
        event = next(e for e in self.fake.delivered_events() if e["event_id"] == event_id)
        self.assertEqual(event["room_id"], room_id)
        self.assertEqual(event["sender"], alice)
        self.assertEqual(event["type"], "m.room.message")
        self.assertEqual(event["content"], {"msgtype": "m.text", "body": "hello bridge"})
        self.assertIn("origin_server_ts", event)
        entry = next(r for r in self.fake.requests if r["method"] == "PUT")
        self.assertEqual(entry["auth"], f"Bearer {HS_TOKEN}".encode())
        self.assertTrue(entry["path"].startswith("/_matrix/app/v1/transactions/"), entry["path"])
        # Events are taken in stream order: the earlier private message was passed over.
        delivered = [e["event_id"] for e in self.fake.delivered_events()]
        self.assertNotIn(hidden, delivered)
        self.assertFalse(any(e["room_id"] == private for e in self.fake.delivered_events()))
        # The ghost's invite and join came too (member events about a namespaced user).
        types = [(e["type"], e.get("state_key")) for e in self.fake.delivered_events() if e["room_id"] == room_id]
        self.assertIn(("m.room.member", ghost), types)

    @inline
    async def test_room_whose_alias_is_in_the_namespace(self):
        _, alice_token = await self.user("alice")
        room_id = (await self.ok("POST", "/_matrix/client/v3/createRoom", {"room_alias_name": "_bridge_portal"},
                                 token=alice_token))["room_id"]
        event_id = await self.send(room_id, alice_token, "in a bridged room")
        await wait_until(lambda: event_id in [e["event_id"] for e in self.fake.delivered_events()],
                         "the aliased room's message")

    @inline
    async def test_legacy_path_is_tried_when_the_prefixed_one_fails(self):
        alice, alice_token = await self.user("alice")

        async def unknown(path, body):
            return 404, {"errcode": "M_UNRECOGNIZED"}
        self.fake.handlers["/_matrix/app/v1/transactions/"] = unknown
        room_id = (await self.ok("POST", "/_matrix/client/v3/createRoom", {"room_alias_name": "_bridge_old"},
                                 token=alice_token))["room_id"]
        event_id = await self.send(room_id, alice_token, "to an old bridge")
        await wait_until(lambda: event_id in [e["event_id"] for e in self.fake.delivered_events()],
                         "delivery at the legacy path")
        legacy = [r for r in self.fake.requests if r["path"].startswith("/transactions/")]
        self.assertTrue(legacy)
        self.assertEqual(self.hs.appservice_sender.transactions_sent, len([
            r for r in legacy if r["status"] == 200]))


class QueueTests(AppServiceTestBase):
    """The persisted queue: a service down, failing, or the homeserver restarting."""

    @inline
    async def test_failing_service_gets_the_same_transactions_in_order_when_back(self):
        ghost, ghost_token = await self.user("_bridge_bob")
        _, alice_token = await self.user("alice")
        room_id = await self.room_with_ghost(alice_token, ghost_token, ghost)
        self.fake.fail_with(500)
        sent = []
        for n in range(5):
            sent.append(await self.send(room_id, alice_token, f"message {n}"))
            # Sends keep working while the service fails; attempts keep being made.
        await wait_until(lambda: len(self.fake.transactions(delivered=False)) >= 3, "several failed attempts")
        await wait_until(self._all_stored(sent), "every message queued")
        self.fake.succeed()
        await wait_until(lambda: all(e in [x["event_id"] for x in self.fake.delivered_events()] for e in sent),
                         "every message delivered")
        await self.drained(self.fake, sent[-1])
        self.check_delivery(self.fake, sent)
        # A transaction that failed was retried with its ID and body unchanged.
        attempts: dict[str, int] = {}
        for txn_id, _ in self.fake.transactions(delivered=False):
            attempts[txn_id] = attempts.get(txn_id, 0) + 1
        self.assertTrue(any(count > 1 for count in attempts.values()), attempts)

    def _all_stored(self, event_ids):
        async def check():
            stored = await self.stored_event_ids()
            return all(e in stored for e in event_ids)
        return check

    @inline
    async def test_service_down_then_back_receives_everything_once_in_order(self):
        ghost, ghost_token = await self.user("_bridge_bob")
        _, alice_token = await self.user("alice")
        room_id = await self.room_with_ghost(alice_token, ghost_token, ghost)
        first = await self.send(room_id, alice_token, "before")
        await self.drained(self.fake, first)
        await self.fake.stop()
        sent = [first]
        for n in range(4):
            sent.append(await self.send(room_id, alice_token, f"while down {n}"))
        await wait_until(self._all_stored(sent[1:]), "the messages queued")
        self.fake.start()
        await wait_until(lambda: all(e in [x["event_id"] for x in self.fake.delivered_events()] for e in sent),
                         "the queued messages delivered")
        self.check_delivery(self.fake, sent)

    @inline
    async def test_a_service_calling_in_ends_its_backoff(self):
        ghost, ghost_token = await self.user("_bridge_bob")
        _, alice_token = await self.user("alice")
        room_id = await self.room_with_ghost(alice_token, ghost_token, ghost)
        first = await self.send(room_id, alice_token, "before")
        await self.drained(self.fake, first)  # the room's setup is delivered: one queue from here
        # A backoff far longer than this test: only the service's own call can end it.
        self.hs.appservice_sender.retry_min_ms = self.hs.appservice_sender.retry_max_ms = 10 * 60 * 1000
        self.fake.fail_with(500)
        attempts_before = len(self.fake.transactions(delivered=False))
        sent = await self.send(room_id, alice_token, "while failing")
        # Both paths (prefixed, then legacy) refused: the push is over and the backoff set.
        await wait_until(lambda: len(self.fake.transactions(delivered=False)) >= attempts_before + 2,
                         "a failed attempt on both paths")

        async def backing_off():
            return await self.hs.appservice_sender.pending_count("bridge") >= 1 \
                and self.hs.appservice_sender._queues["bridge"].retry_interval_ms > 0
        await wait_until(backing_off, "the backoff")
        self.fake.succeed()
        await self.ok("GET", "/_matrix/client/v3/account/whoami", token=AS_TOKEN)
        await self.drained(self.fake, sent)
        self.check_delivery(self.fake, [first, sent])

    @inline
    async def test_queue_survives_a_homeserver_restart(self):
        ghost, ghost_token = await self.user("_bridge_bob")
        _, alice_token = await self.user("alice")
        room_id = await self.room_with_ghost(alice_token, ghost_token, ghost)
        first = await self.send(room_id, alice_token, "before")
        await self.drained(self.fake, first)
        before_ids = [int(t) for t, _ in self.fake.transactions()]
        await self.fake.stop()
        sent = [first]
        for n in range(3):
            sent.append(await self.send(room_id, alice_token, f"queued {n}"))
        await wait_until(self._all_stored(sent[1:]), "the messages queued")
        await self.restart()
        sent.append(await self.send(room_id, alice_token, "after the restart"))
        self.fake.start()
        await wait_until(lambda: all(e in [x["event_id"] for x in self.fake.delivered_events()] for e in sent),
                         "everything delivered after the restart")
        self.check_delivery(self.fake, sent)
        after_ids = [int(t) for t, _ in self.fake.transactions()][len(before_ids):]
        self.assertTrue(after_ids and min(after_ids) > max(before_ids), (before_ids, after_ids))

    @inline
    async def test_restart_while_the_service_hangs(self):
        ghost, ghost_token = await self.user("_bridge_bob")
        _, alice_token = await self.user("alice")
        room_id = await self.room_with_ghost(alice_token, ghost_token, ghost)
        await self.drained(self.fake, (await self.send(room_id, alice_token, "before")))
        gate = self.fake.hang("/_matrix/app/v1/transactions/")
        self.addCleanup(lambda: gate.callback((200, {})) if not gate.called else None)
        stuck = await self.send(room_id, alice_token, "into the void")
        await wait_until(lambda: any(stuck in [e["event_id"] for e in body["events"]]
                                     for _, body in self.fake.transactions(delivered=False)), "the hanging push")
        # The stop does not wait for the service: the push is abandoned, still stored.
        await self.restart()
        del self.fake.handlers["/_matrix/app/v1/transactions/"]
        later = await self.send(room_id, alice_token, "after")
        await self.drained(self.fake, later)
        self.check_delivery(self.fake, [stuck, later])


class EphemeralTests(AppServiceTestBase):
    services = (("bridge", True), ("quiet", False))

    @inline
    async def test_typing_and_receipts_only_with_receive_ephemeral(self):
        quiet = self.fakes["quiet"]
        ghost, ghost_token = await self.user("_bridge_bob")
        alice, alice_token = await self.user("alice")
        room_id = await self.room_with_ghost(alice_token, ghost_token, ghost)
        await self.ok("PUT", f"/_matrix/client/v3/rooms/{q(room_id)}/typing/{user_path(alice)}",
                      {"typing": True, "timeout": 30000}, token=alice_token)
        typing = await wait_until(lambda: [e for e in self.fake.delivered_ephemeral() if e["type"] == "m.typing"],
                                  "a typing notice")
        self.assertEqual(typing[0]["room_id"], room_id)
        self.assertIn(alice, typing[0]["content"]["user_ids"])
        event_id = await self.send(room_id, alice_token, "read me")
        await self.ok("POST", f"/_matrix/client/v3/rooms/{q(room_id)}/receipt/m.read/{q(event_id)}", {},
                      token=ghost_token)
        receipt = await wait_until(lambda: [e for e in self.fake.delivered_ephemeral()
                                            if e["type"] == "m.receipt"], "a receipt")
        self.assertEqual(receipt[0]["room_id"], room_id)
        self.assertIn(ghost, receipt[0]["content"][event_id]["m.read"])
        await self.ok("PUT", f"/_matrix/client/v3/presence/{user_path(alice)}/status", {"presence": "online"},
                      token=alice_token)
        presence = await wait_until(lambda: [e for e in self.fake.delivered_ephemeral()
                                             if e["type"] == "m.presence" and e["sender"] == alice], "presence")
        self.assertEqual(presence[0]["content"]["presence"], "online")
        # The other service got the message but no ephemeral events.
        await wait_until(lambda: event_id in [e["event_id"] for e in quiet.delivered_events()],
                         "the message at the quiet service")
        last = await self.send(room_id, alice_token, "after the receipt")
        await wait_until(lambda: last in [e["event_id"] for e in quiet.delivered_events()], "the last message")
        for _, body in quiet.transactions():
            self.assertFalse(body.get("ephemeral"), body)
        for entry in quiet.requests:
            self.assertEqual(entry["auth"], f"Bearer {HS_TOKEN}-1".encode())


class ToDeviceTests(AppServiceTestBase):
    services = (("bridge", False, True), ("quiet", False, False))

    @inline
    async def test_to_device_messages_for_the_namespace_with_receive_to_device(self):
        quiet = self.fakes["quiet"]
        status, body = await self.request("POST", "/_matrix/client/v3/register",
                                          {"type": "m.login.application_service", "username": "_bridge_bob",
                                           "device_id": "GHOSTDEV"}, token=AS_TOKEN)
        self.assertEqual(status, 200, body)
        ghost, ghost_token = body["user_id"], body["access_token"]
        alice, alice_token = await self.user("alice")
        carol = (await self.register("carol"))["user_id"]
        path = "/_matrix/client/v3/sendToDevice"
        # Outside the namespace first: routed (and dropped) before the ghost's message.
        await self.ok("PUT", f"{path}/m.room_key_request/t1", {"messages": {carol: {"*": {"secret": "carol"}}}},
                      token=alice_token)
        await self.ok("PUT", f"{path}/m.room.encrypted/t2",
                      {"messages": {ghost: {"GHOSTDEV": {"ciphertext": "one"}, "NOSUCHDEV": {"ciphertext": "x"}}}},
                      token=alice_token)
        # A repeated transaction ID sends nothing again.
        await self.ok("PUT", f"{path}/m.room.encrypted/t2",
                      {"messages": {ghost: {"GHOSTDEV": {"ciphertext": "one"}}}}, token=alice_token)
        await self.ok("PUT", f"{path}/m.room.encrypted/t3", {"messages": {ghost: {"*": {"ciphertext": "two"}}}},
                      token=alice_token)

        def delivered(fake):
            return [m for _, body in fake.transactions() for m in body.get("org.matrix.msc2409.to_device", [])]
        messages = await wait_until(lambda: len(delivered(self.fake)) >= 2 and delivered(self.fake),
                                    "the to-device messages")
        expected = [{"type": "m.room.encrypted", "sender": alice, "content": {"ciphertext": "one"},
                     "to_user_id": ghost, "to_device_id": "GHOSTDEV"},
                    {"type": "m.room.encrypted", "sender": alice, "content": {"ciphertext": "two"},
                     "to_user_id": ghost, "to_device_id": "GHOSTDEV"}]
        self.assertEqual(messages, expected)
        # Both keys carry them (older bridges read the de.sorunome one).
        self.assertEqual([m for _, body in self.fake.transactions()
                          for m in body.get("de.sorunome.msc2409.to_device", [])], expected)
        for entry in self.fake.requests:
            self.assertTrue(entry["path"].startswith("/_matrix/app/v1/transactions/"), entry["path"])
        # The messages are still in the ghost's inbox for /sync.
        status, sync = await self.request("GET", "/_matrix/client/v3/sync", token=ghost_token)
        self.assertEqual(status, 200, sync)
        self.assertEqual([e["content"] for e in sync["to_device"]["events"]],
                         [{"ciphertext": "one"}, {"ciphertext": "two"}])
        # The service without the flag gets none, though the ghost is in its namespace too.
        room_id = await self.room_with_ghost(alice_token, ghost_token, ghost)
        event_id = await self.send(room_id, alice_token, "after the to-device messages")
        await wait_until(lambda: event_id in [e["event_id"] for e in quiet.delivered_events()],
                         "the message at the quiet service")
        for _, body in quiet.transactions():
            self.assertNotIn("org.matrix.msc2409.to_device", body)
            self.assertNotIn("de.sorunome.msc2409.to_device", body)


class QueryTests(AppServiceTestBase):
    @inline
    async def test_user_query_lets_the_service_create_the_user(self):
        _, alice_token = await self.user("alice")

        async def users(path, body):
            user_id = path.rsplit("/", 1)[1]
            if user_id.startswith("@_bridge_known"):
                status, answer = await self.request(
                    "POST", "/_matrix/client/v3/register",
                    {"type": "m.login.application_service", "username": user_id[1:].split(":")[0],
                     "inhibit_login": True}, token=AS_TOKEN)
                assert status == 200, answer
                return 200, {}
            return 404, {"errcode": "M_NOT_FOUND"}
        self.fake.handlers["/_matrix/app/v1/users/"] = users
        known = f"@_bridge_known:{self.hs.config.server_name}"
        unknown = f"@_bridge_nobody:{self.hs.config.server_name}"
        status, body = await self.request("GET", f"/_matrix/client/v3/profile/{user_path(known)}",
                                          token=alice_token)
        self.assertEqual(status, 200, body)
        status, body = await self.request("GET", f"/_matrix/client/v3/profile/{user_path(unknown)}",
                                          token=alice_token)
        self.assertEqual(status, 404, body)
        asked = [r["path"] for r in self.fake.requests if r["method"] == "GET"]
        self.assertIn(f"/_matrix/app/v1/users/{known}", asked)
        self.assertIn(f"/_matrix/app/v1/users/{unknown}", asked)
        # Users outside the namespace are never asked about.
        outside = f"@someone:{self.hs.config.server_name}"
        status, _ = await self.request("GET", f"/_matrix/client/v3/profile/{user_path(outside)}", token=alice_token)
        self.assertEqual(status, 404)
        self.assertFalse(any(outside in r["path"] for r in self.fake.requests))

    @inline
    async def test_inviting_a_ghost_the_service_creates(self):
        _, alice_token = await self.user("alice")

        async def users(path, body):
            localpart = path.rsplit("/", 1)[1][1:].split(":")[0]
            status, answer = await self.request(
                "POST", "/_matrix/client/v3/register",
                {"type": "m.login.application_service", "username": localpart, "inhibit_login": True},
                token=AS_TOKEN)
            assert status == 200, answer
            await self.request("PUT", f"/_matrix/client/v3/profile/{user_path(answer['user_id'])}/displayname",
                               {"displayname": "Bridged Dan"}, token=AS_TOKEN, query={"user_id": answer["user_id"]})
            return 200, {}
        self.fake.handlers["/_matrix/app/v1/users/"] = users
        room_id = (await self.ok("POST", "/_matrix/client/v3/createRoom", {}, token=alice_token))["room_id"]
        dan = f"@_bridge_dan:{self.hs.config.server_name}"
        await self.ok("POST", f"/_matrix/client/v3/rooms/{q(room_id)}/invite", {"user_id": dan}, token=alice_token)
        self.assertIn(f"/_matrix/app/v1/users/{dan}", [r["path"] for r in self.fake.requests])
        state = await self.ok("GET", f"/_matrix/client/v3/rooms/{q(room_id)}/state/m.room.member/{user_path(dan)}",
                              token=alice_token)
        self.assertEqual(state.get("membership"), "invite")
        self.assertEqual(state.get("displayname"), "Bridged Dan")

    @inline
    async def test_alias_query_lets_the_service_create_the_portal(self):
        _, alice_token = await self.user("alice")
        server = self.hs.config.server_name

        async def rooms(path, body):
            alias = path.rsplit("/", 1)[1]
            if not alias.startswith("#_bridge_portal"):
                return 404, {"errcode": "M_NOT_FOUND"}
            status, answer = await self.request(
                "POST", "/_matrix/client/v3/createRoom",
                {"room_alias_name": alias[1:].split(":")[0], "preset": "public_chat"}, token=AS_TOKEN)
            assert status == 200, answer
            return 200, {}
        self.fake.handlers["/_matrix/app/v1/rooms/"] = rooms
        status, body = await self.request("GET", f"/_matrix/client/v3/directory/room/{q('#_bridge_portal1:' + server)}")
        self.assertEqual(status, 200, body)
        self.assertTrue(body["room_id"].startswith("!"))
        status, body = await self.request("GET", f"/_matrix/client/v3/directory/room/{q('#_bridge_none:' + server)}")
        self.assertEqual(status, 404, body)
        # Joining by an alias nobody has made yet: the service makes it, the join succeeds.
        joined = await self.ok("POST", f"/_matrix/client/v3/join/{q('#_bridge_portal2:' + server)}", {},
                               token=alice_token)
        self.assertTrue(joined["room_id"].startswith("!"))
        # Aliases outside the namespace are not asked about.
        status, _ = await self.request("GET", f"/_matrix/client/v3/directory/room/{q('#other:' + server)}")
        self.assertEqual(status, 404)
        self.assertFalse(any("#other" in r["path"] for r in self.fake.requests))

    @inline
    async def test_ping_and_errors_from_the_client(self):
        registration = self.hs.appservices[0]
        client = self.hs.appservice_client
        await client.ping(registration, "ping-1")
        entry = self.fake.requests[-1]
        self.assertEqual((entry["method"], entry["path"], entry["body"]),
                         ("POST", "/_matrix/app/v1/ping", {"transaction_id": "ping-1"}))
        self.assertEqual(entry["auth"], f"Bearer {HS_TOKEN}".encode())
        self.assertTrue(await client.query_user(registration, "@_bridge_x:test.local"))
        self.fake.fail_with(500)
        with self.assertRaises(AppServiceError) as caught:
            await client.ping(registration)
        self.assertEqual((caught.exception.errcode, caught.exception.status), ("M_BAD_STATUS", 500))
        self.fake.fail_with(404)
        self.assertFalse(await client.query_alias(registration, "#_bridge_x:test.local"))
        self.fake.succeed()
        self.fake.hang("/_matrix/app/v1/ping")
        client.timeout_s = 0.2
        with self.assertRaises(AppServiceError) as caught:
            await client.ping(registration)
        self.assertEqual(caught.exception.errcode, "M_CONNECTION_TIMEOUT")
        client.timeout_s = 30.0  # a refused connection is reported after HostnameEndpoint's 0.3 s delay
        await self.fake.stop()
        with self.assertRaises(AppServiceError) as caught:
            await client.ping(registration)
        self.assertEqual(caught.exception.errcode, "M_CONNECTION_FAILED")


class DeliverySqliteTests(DeliveryTests, HomeserverTestCase):
    engine = "sqlite"


class QueueSqliteTests(QueueTests, HomeserverTestCase):
    engine = "sqlite"


class QueuePostgresTests(QueueTests, HomeserverTestCase):
    engine = "postgres"


class EphemeralSqliteTests(EphemeralTests, HomeserverTestCase):
    engine = "sqlite"


class ToDeviceSqliteTests(ToDeviceTests, HomeserverTestCase):
    engine = "sqlite"


class ToDevicePostgresTests(ToDeviceTests, HomeserverTestCase):
    engine = "postgres"


class QuerySqliteTests(QueryTests, HomeserverTestCase):
    engine = "sqlite"
