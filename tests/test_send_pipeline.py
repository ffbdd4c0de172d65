"""Many sends into one room at once: they are written in batches, in order, each answered
only after its commit; retries of a transaction ID get the first event; a failed write
fails what was queued behind it and the room carries on."""

from __future__ import annotations

from urllib.parse import quote

from twisted.internet import defer, reactor

from homeserver.app import Homeserver
from homeserver.config import load_config
from tests.support.server import HomeserverTestCase, inline

V3 = "/_matrix/client/v3"


class SendPipelineTests:
    async def room(self):
        token = (await self.register("pipe"))["access_token"]
        status, body = await self.request("POST", f"{V3}/createRoom", {"preset": "public_chat"}, token=token)
        return token, body["room_id"]

    def send(self, token, room_id, txn, body="x", event_type="m.room.message"):
        return defer.ensureDeferred(self.request(
            "PUT", f"{V3}/rooms/{quote(room_id)}/send/{event_type}/{txn}", {"msgtype": "m.text", "body": body},
            token=token))

    async def chain(self, room_id):
        def read(txn):
            rows = txn.select_all("SELECT event_id, json FROM events WHERE room_id = ? ORDER BY stream_ordering",
                                  (room_id,))
            extremities = [r[0] for r in txn.select_all(
                "SELECT event_id FROM event_forward_extremities WHERE room_id = ?", (room_id,))]
            return rows, extremities
        import json
        rows, extremities = await self.hs.db.run_interaction("chain", read)
        return [(event_id, json.loads(raw)) for event_id, raw in rows], extremities

    @inline
    async def test_concurrent_sends_are_all_written_in_one_line(self):
        token, room_id = await self.room()
        results = await defer.gatherResults([self.send(token, room_id, f"t{i}", f"m{i}") for i in range(60)])
        self.assertEqual({status for status, _ in results}, {200})
        chain, extremities = await self.chain(room_id)
        # Every event's only prev is the one written before it; the last is the extremity.
        for (previous_id, _), (_, pdu) in zip(chain, chain[1:]):
            self.assertEqual(pdu["prev_events"], [previous_id])
        self.assertEqual(extremities, [chain[-1][0]])
        sent = {body["event_id"] for _, body in results}
        self.assertTrue(sent <= {event_id for event_id, _ in chain})

    @inline
    async def test_state_changes_between_messages_are_seen_by_the_next_event(self):
        token, room_id = await self.room()
        sender = self.hs.event_sender
        user = "@pipe:test.local"
        levels = dict((await self.hs.room_reader.get_state_event(user, room_id, "m.room.power_levels", "")).content)
        levels["events"] = {**levels["events"], "m.room.message": 0}
        # Started in this order without waiting: each builds on the one queued before it
        # (the room lock is first come, first served), while earlier ones are still written.
        calls = [defer.ensureDeferred(sender.send(user, room_id, "m.room.message", {"body": f"before{i}"}))
                 for i in range(10)]
        calls.append(defer.ensureDeferred(sender.send(user, room_id, "m.room.power_levels", levels, state_key="")))
        calls.append(defer.ensureDeferred(sender.send(user, room_id, "m.room.topic", {"topic": "mid"},
                                                      state_key="")))
        calls += [defer.ensureDeferred(sender.send(user, room_id, "m.room.message", {"body": f"after{i}"}))
                  for i in range(10)]
        events = await defer.gatherResults(calls)
        power_id, topic_id = events[10].event_id, events[11].event_id
        chain, _ = await self.chain(room_id)
        by_id = dict(chain)
        self.assertEqual([event_id for event_id, _ in chain[-22:]], [e.event_id for e in events])
        for event in events[12:]:
            self.assertIn(power_id, by_id[event.event_id]["auth_events"])
        head = await self.hs.rooms.get_room_head(room_id)
        self.assertEqual(head.current_state[("m.room.topic", "")], topic_id)
        self.assertEqual(head.current_state[("m.room.power_levels", "")], power_id)
        # The state group of the last event holds both changes.
        last = await self.hs.events.get_event_rows([chain[-1][0]])
        state = await self.hs.state.get_state_for_group(last[chain[-1][0]].state_group)
        self.assertEqual(state[("m.room.topic", "")], topic_id)

    @inline
    async def test_a_retry_in_flight_gets_the_same_event(self):
        token, room_id = await self.room()
        results = await defer.gatherResults([self.send(token, room_id, "same", "once") for _ in range(5)])
        self.assertEqual(len({body["event_id"] for _, body in results}), 1)
        chain, _ = await self.chain(room_id)
        self.assertEqual(len([1 for _, pdu in chain if pdu["type"] == "m.room.message"]), 1)

    @inline
    async def test_a_retry_after_restart_gets_the_same_event(self):
        token, room_id = await self.room()
        status, first = await self.send(token, room_id, "persisted", "before restart")
        await self.client.close()
        await self.hs.stop()
        self.hs = Homeserver(load_config(self.config_path, environ={}), reactor)
        await self.hs.start()
        self.addCleanup(lambda: defer.ensureDeferred(self.hs.stop()))
        from tests.support.server import HttpClient
        self.client = HttpClient(f"http://127.0.0.1:{self.hs.listening_port}")
        self.addCleanup(lambda: defer.ensureDeferred(self.client.close()))
        status, again = await self.send(token, room_id, "persisted", "before restart")
        self.assertEqual((status, again["event_id"]), (200, first["event_id"]))

    @inline
    async def test_a_failed_write_fails_what_queued_behind_it_and_the_room_recovers(self):
        token, room_id = await self.room()
        store = self.hs.events
        real = store.persist_batch
        failures = []

        async def failing_once(batch, received_ts):
            if not failures:
                failures.append(len(batch))
                raise RuntimeError("disk on fire")
            return await real(batch, received_ts)

        store.persist_batch = failing_once
        results = await defer.gatherResults([self.send(token, room_id, f"f{i}") for i in range(20)])
        store.persist_batch = real
        statuses = [status for status, _ in results]
        self.assertIn(500, statuses)
        self.flushLoggedErrors(RuntimeError)
        # Whatever got a 200 is in the DAG; nothing that failed is; the DAG is whole.
        chain, extremities = await self.chain(room_id)
        stored = {event_id for event_id, _ in chain}
        for status, body in results:
            if status == 200:
                self.assertIn(body["event_id"], stored)
        for (previous_id, _), (_, pdu) in zip(chain, chain[1:]):
            self.assertEqual(pdu["prev_events"], [previous_id])
        status, after = await self.send(token, room_id, "after-failure")
        self.assertEqual(status, 200)
        chain, extremities = await self.chain(room_id)
        self.assertEqual(extremities, [after["event_id"]])


class SendPipelineSqliteTests(SendPipelineTests, HomeserverTestCase):
    engine = "sqlite"


class SendPipelinePostgresTests(SendPipelineTests, HomeserverTestCase):
    engine = "postgres"
