"""A network partition between two servers (each in its own process) sharing a room: each side changes power
levels and memberships while cut off; once the network heals, state resolution brings
both to the same current state.

Each server is reached only through a TCP proxy on its advertised port (its server name
names the proxy), so the test cuts and heals the link by switching the proxies."""

from __future__ import annotations

from twisted.internet import defer, reactor
from twisted.protocols.portforward import ProxyFactory
from twisted.trial import unittest

from tests.support.federation import ProcessPeer, path_id
from tests.support.server import inline
from tests.support.synapse import free_ports


class SwitchableProxy(ProxyFactory):
    """Forwards to the real listener while ``up``; when cut, drops every connection."""

    def __init__(self, port: int):
        super().__init__("127.0.0.1", port)
        self.up = True
        self.connections: set = set()

    def buildProtocol(self, addr):
        if not self.up:
            return None
        proto = super().buildProtocol(addr)
        self.connections.add(proto)
        return proto

    def cut(self) -> None:
        self.up = False
        for proto in list(self.connections):
            if proto.transport is not None:
                proto.transport.abortConnection()
            if getattr(proto, "peer", None) is not None and proto.peer.transport is not None:
                proto.peer.transport.abortConnection()
        self.connections.clear()


class PartitionTests(unittest.TestCase):
    engine = "sqlite"
    timeout = 180

    @inline
    async def setUp(self):
        name_ports = free_ports(4)
        listen_ports, name_ports = name_ports[:2], name_ports[2:]
        self.a = ProcessPeer(self, "a", self.engine, listen_ports[0], name_ports[0])
        self.c = ProcessPeer(self, "c", self.engine, listen_ports[1], name_ports[1])
        self.proxies = []
        for peer, name_port in ((self.a, name_ports[0]), (self.c, name_ports[1])):
            proxy = SwitchableProxy(peer.port)
            listener = reactor.listenTCP(name_port, proxy, interface="127.0.0.1")
            self.addCleanup(listener.stopListening)
            self.addCleanup(proxy.cut)
            self.proxies.append(proxy)
        await defer.gatherResults([defer.ensureDeferred(p.start()) for p in (self.a, self.c)])

        self.alice, self.dan = await self.a.register("alice"), await self.a.register("dan")
        self.bob, self.erin = await self.c.register("bob"), await self.c.register("erin")
        self.ids = {name: peer.user_id(name) for name, peer in
                    (("alice", self.a), ("dan", self.a), ("bob", self.c), ("erin", self.c))}
        self.room_id = await self.a.create_room(self.alice, preset="public_chat")
        for peer, token in ((self.a, self.dan), (self.c, self.bob), (self.c, self.erin)):
            status, body = await peer.join(token, self.room_id, via=[self.a.server_name])
            self.assertEqual(status, 200, body)
        levels = await self._get_state(self.a, self.alice, "m.room.power_levels")
        levels["users"][self.ids["bob"]] = 50
        await self._put_state(self.a, self.alice, "m.room.power_levels", levels)
        await self._wait_converged()

    async def _get_state(self, peer, token, event_type, state_key=""):
        status, body = await peer.request(
            "GET", f"/_matrix/client/v3/rooms/{path_id(self.room_id)}/state/{event_type}/{path_id(state_key)}",
            token=token)
        self.assertEqual(status, 200, body)
        return body

    async def _put_state(self, peer, token, event_type, content, state_key=""):
        status, body = await peer.request(
            "PUT", f"/_matrix/client/v3/rooms/{path_id(self.room_id)}/state/{event_type}/{path_id(state_key)}",
            content, token=token)
        self.assertEqual(status, 200, body)
        return body["event_id"]

    async def _kick(self, peer, token, user_id):
        status, body = await peer.request("POST", f"/_matrix/client/v3/rooms/{path_id(self.room_id)}/kick",
                                          {"user_id": user_id}, token=token)
        self.assertEqual(status, 200, body)

    async def _state_ids(self, peer, token) -> dict:
        return {(e["type"], e["state_key"]): e["event_id"] for e in await peer.state(token, self.room_id)}

    async def _wait_converged(self) -> dict:
        async def same():
            on_a = await self._state_ids(self.a, self.alice)
            on_c = await self._state_ids(self.c, self.bob)
            return on_a if on_a and on_a == on_c else None
        try:
            return await self.a.wait_for(same, timeout=30, what="both servers on the same current state")
        except AssertionError:
            on_a = await self._state_ids(self.a, self.alice)
            on_c = await self._state_ids(self.c, self.bob)
            diff = {k: (on_a.get(k), on_c.get(k)) for k in set(on_a) | set(on_c) if on_a.get(k) != on_c.get(k)}
            raise AssertionError(f"current state differs after healing: {diff}") from None

    @inline
    async def test_concurrent_changes_converge_after_the_partition_heals(self):
        for proxy in self.proxies:
            proxy.cut()

        # Side A: alice takes bob's power away and kicks erin.
        levels = await self._get_state(self.a, self.alice, "m.room.power_levels")
        levels["users"][self.ids["bob"]] = 0
        await self._put_state(self.a, self.alice, "m.room.power_levels", levels)
        await self._kick(self.a, self.alice, self.ids["erin"])
        # Side C, at the same time: bob (still a moderator there) kicks dan and sets the topic.
        await self._kick(self.c, self.bob, self.ids["dan"])
        await self._put_state(self.c, self.bob, "m.room.topic", {"topic": "bob's topic"})
        self.assertNotEqual(await self._state_ids(self.a, self.alice), await self._state_ids(self.c, self.bob))

        for proxy in self.proxies:
            proxy.up = True
        # New messages on both sides carry the forks to each other.
        await self.a.send_text(self.alice, self.room_id, "anyone there?")
        await self.c.send_text(self.bob, self.room_id, "back online")
        state = await self._wait_converged()

        # Alice's power change resolves first (power events by mainline); bob's actions
        # from the other side are then checked against it and lose.
        members = await self.a.state(self.alice, self.room_id)
        membership = {e["state_key"]: e["content"]["membership"] for e in members if e["type"] == "m.room.member"}
        self.assertEqual(membership[self.ids["erin"]], "leave")
        self.assertEqual(membership[self.ids["dan"]], "join")
        self.assertNotIn(("m.room.topic", ""), state)
        levels = await self._get_state(self.c, self.bob, "m.room.power_levels")
        self.assertEqual(levels["users"][self.ids["bob"]], 0)


class PartitionPostgresTests(PartitionTests):
    engine = "postgres"


