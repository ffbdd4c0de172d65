"""Homeservers that federate with each other on loopback, in this process or in their own.

Each server is named ``127.0.0.1:<federation port>`` (an IP literal with a port: no
well-known or SRV lookups), listens with a self-signed certificate, accepts its peers'
self-signed certificates and may connect to loopback.
"""

from __future__ import annotations

import os
import time
from typing import Any
from urllib.parse import quote

from twisted.internet import defer, reactor
from twisted.internet.task import deferLater
from twisted.trial import unittest

from homeserver.app import Homeserver, StartupError
from homeserver.config import load_config
from tests.support.databases import TestDatabase
from tests.support.process import HomeserverProcess
from tests.support.server import HttpClient, inline, write_config
from tests.support.synapse import free_ports

PASSWORD = "correct horse battery"


def federation_settings(port: int, name_port: int | None = None, host: str = "127.0.0.1", **federation: Any) -> dict:
    """Settings of a server listening for federation on ``port``, named
    ``host:name_port`` (the same port, or a proxy's in front of it)."""
    return {
        "instance": {"domain": f"{host}:{name_port or port}"},
        "federation": {"enabled": True, "host": "127.0.0.1", "port": port, "insecure_destinations": ["*"],
                       "ip_range_allowlist": ["127.0.0.1/32"], "retry_min_secs": 0.2, "retry_max_secs": 2.0,
                       **federation},
    }


def path_id(identifier: str) -> str:
    return quote(identifier, safe="")


async def sleep(seconds: float) -> None:
    await deferLater(reactor, seconds, lambda: None)


class Peer:
    """What tests do with one homeserver through its client API."""

    client: HttpClient
    server_name: str

    def user_id(self, localpart: str) -> str:
        return f"@{localpart}:{self.server_name}"

    async def request(self, method: str, path: str, body: Any = None, **kwargs):
        return await self.client.request(method, path, body, **kwargs)

    async def register(self, localpart: str) -> str:
        status, body = await self.request("POST", "/_matrix/client/v3/register",
                                          {"username": localpart, "password": PASSWORD,
                                           "auth": {"type": "m.login.dummy"}})
        if status != 200:
            raise AssertionError(f"register {localpart} on {self.server_name}: {status} {body}")
        return body["access_token"]

    async def create_room(self, token: str, **body) -> str:
        status, answer = await self.request("POST", "/_matrix/client/v3/createRoom", body, token=token)
        if status != 200:
            raise AssertionError(f"createRoom: {status} {answer}")
        return answer["room_id"]

    async def join(self, token: str, room: str, via: list[str] | None = None):
        query = [("via", v) for v in via or []]
        path = "/_matrix/client/v3/join/" + path_id(room)
        if query:
            path += "?" + "&".join(f"{k}={quote(v, safe='')}" for k, v in query)
        return await self.request("POST", path, {}, token=token)

    async def send_text(self, token: str, room_id: str, text: str, txn: str | None = None) -> str:
        txn = txn or f"t{time.monotonic_ns()}"
        status, body = await self.request(
            "PUT", f"/_matrix/client/v3/rooms/{path_id(room_id)}/send/m.room.message/{txn}",
            {"msgtype": "m.text", "body": text}, token=token)
        if status != 200:
            raise AssertionError(f"send on {self.server_name}: {status} {body}")
        return body["event_id"]

    async def messages(self, token: str, room_id: str, limit: int = 100) -> list[dict]:
        status, body = await self.request(
            "GET", f"/_matrix/client/v3/rooms/{path_id(room_id)}/messages?dir=b&limit={limit}", token=token)
        if status != 200:
            return []
        return list(reversed(body.get("chunk", [])))

    async def state(self, token: str, room_id: str) -> list[dict]:
        status, body = await self.request("GET", f"/_matrix/client/v3/rooms/{path_id(room_id)}/state", token=token)
        return body if status == 200 else []

    async def wait_for(self, probe, timeout: float = 20.0, what: str = "condition"):
        """Poll ``probe`` (async, returns a truthy value when done) until it holds."""
        deadline = time.monotonic() + timeout
        while True:
            result = await probe()
            if result:
                return result
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what} on {self.server_name}")
            await sleep(0.05)

    async def wait_for_event(self, token: str, room_id: str, event_id: str, timeout: float = 20.0) -> dict:
        async def probe():
            status, body = await self.request(
                "GET", f"/_matrix/client/v3/rooms/{path_id(room_id)}/event/{path_id(event_id)}", token=token)
            return body if status == 200 else None
        return await self.wait_for(probe, timeout, f"event {event_id}")


class InProcessPeer(Peer):
    """A homeserver in this process (fast; most federation tests use these)."""

    def __init__(self, tmpdir: str, engine: str = "sqlite", name_port: int | None = None, host: str = "127.0.0.1",
                 **federation: Any):
        self.tmpdir = tmpdir
        os.makedirs(tmpdir, exist_ok=True)
        self.engine = engine
        self.federation = federation
        self.database = TestDatabase(engine, tmpdir)
        self.port = free_ports(1)[0]
        self.name_port = name_port or self.port
        self.host = host
        self.server_name = f"{host}:{self.name_port}"
        self.hs: Homeserver | None = None

    async def start(self) -> None:
        for attempt in range(3):
            path = write_config(self.tmpdir, self.database.url,
                                federation_settings(self.port, self.name_port, self.host, **self.federation))
            self.hs = Homeserver(load_config(path, environ={}), reactor)
            try:
                await self.hs.start()
                break
            except StartupError as error:
                await self.hs.stop()
                # The free port was taken between choosing and binding it: choose again
                # (the name follows it unless a proxy in front holds the name).
                if "listen for federation" not in str(error) or attempt == 2:
                    raise
                same_name = self.name_port == self.port
                self.port = free_ports(1)[0]
                if same_name:
                    self.name_port = self.port
                    self.server_name = f"{self.host}:{self.port}"
        self.client = HttpClient(f"http://127.0.0.1:{self.hs.listening_port}")

    async def stop(self) -> None:
        if self.hs is not None:
            await self.client.close()
            await self.hs.stop()
            self.hs = None

    async def cleanup(self) -> None:
        await self.stop()
        self.database.drop()


class ProcessPeer(Peer):
    """A homeserver in its own process (``python -m homeserver run``), listening for
    federation on ``port`` and named after ``name_port`` (a proxy's, or the same)."""

    def __init__(self, testcase, name: str, engine: str, port: int, name_port: int | None = None):
        directory = os.path.join(os.path.abspath(testcase.mktemp()), name)
        os.makedirs(directory)
        self.database = TestDatabase(engine, directory)
        testcase.addCleanup(self.database.drop)
        self.port = port
        self._same_name = name_port is None or name_port == port
        self.server_name = f"127.0.0.1:{name_port or port}"
        self.process = HomeserverProcess(directory, self.database.url, federation_settings(port, name_port))
        testcase.addCleanup(lambda: self.process.cleanup())
        testcase.addCleanup(lambda: defer.ensureDeferred(self.close()))
        self.client = None

    async def start(self) -> None:
        first_start = self.client is None
        for attempt in range(3):
            try:
                await self.process.start()
                break
            except RuntimeError as error:
                # On the first start only: the free port was taken before the process bound
                # it. A restart keeps its port (and name), so it must not move.
                if not first_start or "Address already in use" not in str(error) or attempt == 2 \
                        or not self._same_name:
                    raise
                self.port = free_ports(1)[0]
                self.server_name = f"127.0.0.1:{self.port}"
                self.process = HomeserverProcess(self.process.directory, self.database.url,
                                                 federation_settings(self.port))
        if self.client is not None:
            await self.client.close()
        self.client = HttpClient(self.process.base_url)

    async def stop(self) -> None:
        await self.client.close()
        await self.process.terminate()

    async def close(self) -> None:
        if self.client is not None:
            await self.client.close()


async def start_peers(testcase, count: int, engine: str = "sqlite", hosts: list[str] | None = None,
                      **federation: Any) -> list[InProcessPeer]:
    """``count`` federating servers; ``hosts`` names their hosts (default 127.0.0.1 each;
    ``localhost`` gives a server a different host for ACL tests)."""
    peers = []
    for index in range(count):
        host = hosts[index] if hosts else "127.0.0.1"
        peer = InProcessPeer(os.path.join(os.path.abspath(testcase.mktemp()), f"hs{index}"), engine, host=host,
                             **federation)
        testcase.addCleanup(lambda p=peer: defer.ensureDeferred(p.cleanup()))
        peers.append(peer)
    for peer in peers:
        await peer.start()
    return peers


class TwoServerTestCase(unittest.TestCase):
    """Two federating homeservers: ``a`` with alice, ``b`` with bob (access tokens
    ``self.alice``, ``self.bob``; user IDs ``self.alice_id``, ``self.bob_id``)."""
    engine = "sqlite"
    timeout = 120

    @inline
    async def setUp(self):
        self.a, self.b = await start_peers(self, 2, self.engine)
        self.alice = await self.a.register("alice")
        self.bob = await self.b.register("bob")
        self.alice_id, self.bob_id = self.a.user_id("alice"), self.b.user_id("bob")

    async def ok(self, peer, method: str, path: str, body=None, token: str | None = None, **kwargs):
        status, answer = await peer.request(method, path, body, token=token, **kwargs)
        self.assertEqual(status, 200, answer)
        return answer

    async def call(self, peer, method: str, path: str, token: str, body=None):
        """``ok`` for a path under /api/v1."""
        return await self.ok(peer, method, "/api/v1" + path, body, token)
