"""A forked DAG: two branches that change power levels and state concurrently, merged.
Whatever order its events arrive in, every server ends with the same current state."""

from __future__ import annotations

import itertools
import json
import os
from urllib.parse import quote

from twisted.internet import defer, reactor

from homeserver.app import Homeserver
from homeserver.config import load_config
from homeserver.events.builder import build_event
from homeserver.events.event import Event
from homeserver.events.room_versions import room_version
from tests.support.databases import TestDatabase
from tests.support.server import HomeserverTestCase, inline, write_config

V3 = "/_matrix/client/v3"


class ForkConvergenceTests:
    async def fresh_homeserver(self) -> Homeserver:
        """Another homeserver on its own database, sharing the first one's identity."""
        directory = os.path.abspath(self.mktemp())
        os.makedirs(os.path.join(directory, "data"))
        with open(self.hs.config.signing_key_path) as src, \
                open(os.path.join(directory, "data", "signing.key"), "w") as dst:
            dst.write(src.read())
        database = TestDatabase(self.engine, directory)
        self.addCleanup(database.drop)
        hs = Homeserver(load_config(write_config(directory, database.url), environ={}), reactor)
        await hs.start()
        self.addCleanup(lambda: defer.ensureDeferred(hs.stop()))
        return hs

    async def base_room(self, version: str) -> tuple[str, list[Event]]:
        """alice's room where bob holds power 50; returns the room and its events in order."""
        alice = (await self.register("alice" + version))["access_token"]
        bob = (await self.register("bob" + version))["access_token"]
        status, created = await self.request("POST", f"{V3}/createRoom", {
            "preset": "public_chat", "room_version": version, "name": "Fork", "topic": "original"}, token=alice)
        room_id = created["room_id"]
        await self.request("POST", f"{V3}/join/{quote(room_id)}", {}, token=bob)
        path = f"{V3}/rooms/{quote(room_id)}/state/m.room.power_levels"
        status, levels = await self.request("GET", path, token=alice)
        levels["users"][f"@bob{version}:test.local"] = 50
        status, _ = await self.request("PUT", path, levels, token=alice)
        self.assertEqual(status, 200)
        rows = await self.hs.db.run_interaction("events", lambda txn: txn.select_all(
            "SELECT event_id FROM events WHERE room_id = ? ORDER BY stream_ordering", (room_id,)))
        events = await self.hs.events.get_events([r[0] for r in rows])
        return room_id, [events[r[0]] for r in rows]

    def sign(self, version, room_id: str, sender: str, event_type: str, content: dict, state_key, prev, auth,
             depth: int, ts: int) -> Event:
        return build_event(version, room_id=room_id, sender=sender, event_type=event_type, content=content,
                           state_key=state_key, prev_events=prev, auth_events=auth, depth=depth, origin_server_ts=ts,
                           server_name="test.local", signing_key=self.hs.signing_key)

    async def fork(self, version_id: str):
        version = room_version(version_id)
        room_id, base = await self.base_room(version_id)
        head = await self.hs.room_heads.get(room_id)
        state = head.state
        alice, bob = f"@alice{version_id}:test.local", f"@bob{version_id}:test.local"
        tip = base[-1]
        create = state[("m.room.create", "")]
        auth_base = [] if not version.create_in_auth_events else [create]
        power_id = state[("m.room.power_levels", "")]
        levels = dict((await self.hs.events.get_event(power_id)).content)
        # Branch A: alice demotes bob. Branch B: bob, still at 50, renames the room and
        # changes the topic. State resolution must let A win over B's changes.
        demoted = {**levels, "users": {k: v for k, v in levels["users"].items() if k != bob}}
        a = self.sign(version, room_id, alice, "m.room.power_levels", demoted, "", [tip.event_id],
                      auth_base + [power_id, state[("m.room.member", alice)]], tip.depth + 1, tip.origin_server_ts + 10)
        b1 = self.sign(version, room_id, bob, "m.room.topic", {"topic": "bob was here"}, "", [tip.event_id],
                       auth_base + [power_id, state[("m.room.member", bob)]], tip.depth + 1, tip.origin_server_ts + 5)
        b2 = self.sign(version, room_id, bob, "m.room.name", {"name": "Bob's room"}, "", [b1.event_id],
                       auth_base + [power_id, state[("m.room.member", bob)]], tip.depth + 2, tip.origin_server_ts + 6)
        merge = self.sign(version, room_id, alice, "m.room.message", {"body": "merged"}, None,
                          [a.event_id, b2.event_id], auth_base + [a.event_id, state[("m.room.member", alice)]],
                          tip.depth + 3, tip.origin_server_ts + 20)
        return room_id, base, [a, b1, b2], merge

    async def converge(self, version_id: str):
        room_id, base, branch_events, merge = await self.fork(version_id)
        a, b1, b2 = branch_events
        # Orders in which the fork can arrive (b1 always before b2: it is its prev event).
        orders = [order for order in itertools.permutations([a, b1, b2])
                  if order.index(b1) < order.index(b2)]
        results = []
        for order in orders:
            hs = await self.fresh_homeserver()
            for event in base:
                await hs.event_ingester.ingest(Event(json.loads(json.dumps(event.pdu)), event.room_version,
                                                     event.event_id))
            for event in [*order, merge]:
                await hs.event_ingester.ingest(Event(dict(event.pdu), event.room_version, event.event_id))
            head = await hs.room_heads.get(room_id)
            # The merge is a forward extremity; when b2 arrived after a's demotion it was
            # soft-failed, so b1 stays one too until something refers to it.
            self.assertIn(merge.event_id, head.extremities)
            self.assertLessEqual(set(head.extremities), {merge.event_id, b1.event_id})
            # What the database says agrees with the in-memory head.
            stored = await hs.rooms.get_room_head(room_id)
            self.assertEqual(stored.current_state, head.state)
            self.assertEqual(sorted(stored.extremities), sorted(head.extremities))
            results.append(head.state)
        for result in results[1:]:
            self.assertEqual(result, results[0])
        final = results[0]
        self.assertEqual(final[("m.room.power_levels", "")], a.event_id)
        # bob's changes were authorised by power he lost in the resolved order.
        self.assertNotIn(b1.event_id, final.values())
        self.assertNotIn(b2.event_id, final.values())

    @inline
    async def test_fork_converges_v11(self):
        await self.converge("11")

    @inline
    async def test_fork_converges_v12(self):
        await self.converge("12")

    @inline
    async def test_unknown_prev_events_are_reported(self):
        room_id, base, (a, b1, b2), merge = await self.fork("11")
        from homeserver.handlers.event_ingest import MissingEvents
        hs = await self.fresh_homeserver()
        for event in base:
            await hs.event_ingester.ingest(Event(dict(event.pdu), event.room_version, event.event_id))
        with self.assertRaises(MissingEvents) as caught:
            await hs.event_ingester.ingest(Event(dict(b2.pdu), b2.room_version, b2.event_id))
        self.assertEqual(caught.exception.event_ids, [b1.event_id])


class ForkConvergenceSqliteTests(ForkConvergenceTests, HomeserverTestCase):
    engine = "sqlite"


class ForkConvergencePostgresTests(ForkConvergenceTests, HomeserverTestCase):
    engine = "postgres"
