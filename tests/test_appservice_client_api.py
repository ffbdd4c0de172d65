"""Application service -> homeserver: what a bridge sees when it talks to a running server
with its registration files (as_token, masquerading, ghost registration and login,
timestamp massaging, rate-limit exemption, ping), and what others see in its namespace."""

from __future__ import annotations

import json
import os
import socket

from twisted.internet import defer, reactor
from twisted.trial import unittest
from twisted.web import resource, server as web_server

from appservice.registration import RegistrationError
from homeserver.app import Homeserver
from homeserver.config import load_config
from tests.support.api import API, V3, ApiHelpers, q
from tests.support.databases import TestDatabase
from tests.support.process import run_cli
from tests.support.server import HomeserverTestCase, HttpClient, inline, user_path, write_config

BRIDGE_TOKEN = "as-token-bridge"
LIMITED_TOKEN = "as-token-limited"
BROKEN_TOKEN = "as-token-broken"
GONE_TOKEN = "as-token-gone"
SLOW_TOKEN = "as-token-slow"
SENDER = "@bridgebot:test.local"


def registration_yaml(id_: str, url: str | None, as_token: str, sender: str, users: list[tuple[str, bool]],
                      rate_limited: bool | None = None, aliases: list[tuple[str, bool]] = ()) -> str:
    def namespace(entries):
        return "".join(f"\n    - regex: '{regex}'\n      exclusive: {'true' if exclusive else 'false'}"
                       for regex, exclusive in entries) or " []"
    lines = [f"id: {id_}", f"url: {json.dumps(url) if url else 'null'}", f"as_token: {as_token}",
             f"hs_token: hs-{as_token}", f"sender_localpart: {sender}"]
    if rate_limited is not None:
        lines.append(f"rate_limited: {'true' if rate_limited else 'false'}")
    lines.append("namespaces:")
    lines.append("  users:" + namespace(users))
    lines.append("  aliases:" + namespace(aliases))
    lines.append("  rooms: []")
    return "\n".join(lines) + "\n"


class FakeAppService(resource.Resource):
    """Answers like an application service: 200 {} to everything, 404 to user and alias
    queries; under /broken 500 to everything; under /slow never. Records what it got."""
    isLeaf = True

    def __init__(self):
        super().__init__()
        self.received: list[tuple[str, str, bytes | None, dict]] = []
        self._hanging: list = []

    def render(self, request):
        path = request.path.decode()
        body = json.loads(request.content.read() or b"{}")
        self.received.append((request.method.decode(), path, request.getHeader(b"Authorization"), body))
        request.setHeader(b"Content-Type", b"application/json")
        if path.startswith("/slow"):
            self._hanging.append(request)
            return web_server.NOT_DONE_YET
        if path.startswith("/broken"):
            request.setResponseCode(500)
            return b'{"errcode": "M_UNKNOWN", "error": "broken"}'
        if "/users/" in path or "/rooms/" in path:
            request.setResponseCode(404)
            return b'{"errcode": "M_NOT_FOUND", "error": "no"}'
        return b"{}"

    def release(self):
        for request in self._hanging:
            if not request._disconnected:
                request.finish()
        self._hanging = []


def closed_port() -> int:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return port


class AppServiceTestCase(HomeserverTestCase):
    """A homeserver with five registrations written next to its configuration:
    ``bridge`` (exclusive @_bridge_*, rate_limited false, a working url), ``limited``
    (non-exclusive @_lim_*, rate limited, url null), ``broken`` (url answers 500),
    ``gone`` (url refuses connections) and ``slow`` (url never answers)."""

    @inline
    async def setUp(self):
        self.appservice = FakeAppService()
        self.as_port = reactor.listenTCP(0, web_server.Site(self.appservice), interface="127.0.0.1")
        self.addCleanup(self.as_port.stopListening)
        self.addCleanup(self.appservice.release)
        as_url = f"http://127.0.0.1:{self.as_port.getHost().port}"

        self.tmpdir = os.path.abspath(self.mktemp())
        os.makedirs(os.path.join(self.tmpdir, "appservices"))
        files = {
            "bridge.yaml": registration_yaml("bridge", as_url, BRIDGE_TOKEN, "bridgebot",
                                             [(r"@_bridge_.*:test\.local", True)], rate_limited=False,
                                             aliases=[(r"#_bridge_.*:test\.local", True)]),
            "limited.yaml": registration_yaml("limited", None, LIMITED_TOKEN, "limitedbot",
                                              [(r"@_lim_.*:test\.local", False)]),
            "broken.yaml": registration_yaml("broken", as_url + "/broken", BROKEN_TOKEN, "brokenbot", []),
            "gone.yaml": registration_yaml("gone", f"http://127.0.0.1:{closed_port()}", GONE_TOKEN, "gonebot", []),
            "slow.yaml": registration_yaml("slow", as_url + "/slow", SLOW_TOKEN, "slowbot", []),
        }
        for name, text in files.items():
            with open(os.path.join(self.tmpdir, "appservices", name), "w") as handle:
                handle.write(text)
        overrides = {section: dict(values) for section, values in self.config_overrides.items()}
        # Relative to the configuration file's folder, as a deployment would write them.
        overrides["appservice"] = {"config_files": [f"appservices/{name}" for name in files]}

        self.database = TestDatabase(self.engine, self.tmpdir)
        self.addCleanup(self.database.drop)
        self.config_path = write_config(self.tmpdir, self.database.url, overrides)
        self.hs = Homeserver(load_config(self.config_path, environ={}), reactor)
        await self.hs.start()
        self.addCleanup(lambda: defer.ensureDeferred(self.hs.stop()))
        self.client = HttpClient(f"http://127.0.0.1:{self.hs.listening_port}")
        self.addCleanup(lambda: defer.ensureDeferred(self.client.close()))
        if getattr(self.hs, "appservice_client", None) is None:
            # Until app.py wires it: the real client all the same.
            from appservice.client import ApplicationServiceClient
            self.hs.appservice_client = ApplicationServiceClient(reactor, self.hs.clock)
            self.addCleanup(lambda: defer.ensureDeferred(self.hs.appservice_client.close()))

    async def as_request(self, method, path, body=None, *, token=BRIDGE_TOKEN, user_id=None, **query):
        if user_id is not None:
            query["user_id"] = user_id
        return await self.request(method, path, body, token=token, query=query or None)

    async def register_ghost(self, localpart: str, token: str = BRIDGE_TOKEN, **extra) -> dict:
        status, body = await self.request("POST", f"{V3}/register",
                                          {"type": "m.login.application_service", "username": localpart,
                                           **extra}, token=token)
        self.assertEqual(status, 200, body)
        return body


class AppServiceClientApiTests(ApiHelpers):
    @inline
    async def test_sender_user_exists_and_the_as_token_acts_as_it(self):
        for sender, service in ((SENDER, "bridge"), ("@limitedbot:test.local", "limited")):
            user = await self.hs.users.get_user(sender)
            self.assertIsNotNone(user, sender)
            self.assertEqual(user.appservice_id, service)
        status, body = await self.as_request("GET", f"{V3}/account/whoami")
        self.assertEqual(status, 200, body)
        self.assertEqual(body["user_id"], SENDER)
        self.assertNotIn("device_id", body)
        # The sender is a real user: it creates rooms and others see it as the sender.
        status, body = await self.as_request("POST", f"{V3}/createRoom", {"preset": "public_chat"})
        self.assertEqual(status, 200, body)
        room_id = body["room_id"]
        status, body = await self.as_request("PUT", f"{V3}/rooms/{q(room_id)}/send/m.room.message/t1",
                                             {"msgtype": "m.text", "body": "hello from the bot"})
        self.assertEqual(status, 200, body)
        event = await self.ok("GET", f"{V3}/rooms/{q(room_id)}/event/{q(body['event_id'])}",
                              token=BRIDGE_TOKEN)
        self.assertEqual(event["sender"], SENDER)
        # The registration names the sender; nobody may take it, even after a restart.
        self.assertMatrixError(await self.request("GET", f"{V3}/register/available",
                                                  query={"username": "bridgebot"}), 400, "M_EXCLUSIVE")

    @inline
    async def test_bad_and_missing_tokens_are_refused(self):
        self.assertMatrixError(await self.request("GET", f"{V3}/account/whoami"), 401, "M_MISSING_TOKEN")
        self.assertMatrixError(await self.request("GET", f"{V3}/account/whoami", token="as-token-nope"),
                               401, "M_UNKNOWN_TOKEN")
        self.assertMatrixError(await self.as_request("GET", f"{V3}/account/whoami", token="hs-" + BRIDGE_TOKEN,
                                                     user_id=SENDER), 401, "M_UNKNOWN_TOKEN")
        self.assertMatrixError(await self.request("POST", f"{V3}/register",
                                                  {"type": "m.login.application_service", "username": "_bridge_x"}),
                               401, "M_MISSING_TOKEN")
        self.assertMatrixError(await self.request("POST", f"{V3}/register",
                                                  {"type": "m.login.application_service", "username": "_bridge_x"},
                                                  token="wrong"), 401, "M_UNKNOWN_TOKEN")

    @inline
    async def test_masquerading_inside_the_namespace_after_registering_the_ghost(self):
        ghost = "@_bridge_alice:test.local"
        # Not registered yet: refused, as Synapse refuses it.
        self.assertMatrixError(await self.as_request("GET", f"{V3}/account/whoami", user_id=ghost),
                               403, "M_FORBIDDEN")
        body = await self.register_ghost("_bridge_alice", inhibit_login=True)
        self.assertEqual(body["user_id"], ghost)
        self.assertNotIn("access_token", body)
        self.assertEqual((await self.hs.users.get_user(ghost)).appservice_id, "bridge")
        status, body = await self.as_request("GET", f"{V3}/account/whoami", user_id=ghost)
        self.assertEqual((status, body["user_id"]), (200, ghost), body)
        # Registering it twice says it is taken.
        self.assertMatrixError(await self.request("POST", f"{V3}/register",
                                                  {"type": "m.login.application_service",
                                                   "username": "_bridge_alice"}, token=BRIDGE_TOKEN),
                               400, "M_USER_IN_USE")

        # ?device_id= picks a device of the ghost (made when new).
        status, body = await self.as_request("GET", f"{V3}/account/whoami", user_id=ghost, device_id="BRIDGEDEV")
        self.assertEqual((status, body.get("device_id")), (200, "BRIDGEDEV"), body)
        status, body = await self.as_request("GET", f"{V3}/devices", user_id=ghost)
        self.assertEqual(status, 200, body)
        self.assertIn("BRIDGEDEV", [d["device_id"] for d in body["devices"]])

        # Acting as the ghost in a room: the events are the ghost's.
        alice, alice_token = await self.user("alice")
        room = await self.ok("POST", f"{V3}/createRoom", {"preset": "public_chat"}, token=alice_token)
        room_id = room["room_id"]
        status, body = await self.as_request("POST", f"{V3}/join/{q(room_id)}", {}, user_id=ghost)
        self.assertEqual(status, 200, body)
        status, body = await self.as_request("PUT", f"{V3}/rooms/{q(room_id)}/send/m.room.message/g1",
                                             {"msgtype": "m.text", "body": "bridged"}, user_id=ghost)
        self.assertEqual(status, 200, body)
        event = await self.ok("GET", f"{V3}/rooms/{q(room_id)}/event/{q(body['event_id'])}", token=alice_token)
        self.assertEqual(event["sender"], ghost)
        # Same transaction ID from the same ghost: the same event.
        status, again = await self.as_request("PUT", f"{V3}/rooms/{q(room_id)}/send/m.room.message/g1",
                                              {"msgtype": "m.text", "body": "bridged"}, user_id=ghost)
        self.assertEqual((status, again["event_id"]), (200, body["event_id"]))

    @inline
    async def test_masquerading_outside_the_namespace_is_refused(self):
        alice, alice_token = await self.user("alice")
        for outsider in (alice, "@_bridge_x:elsewhere.example", "@_lim_x:test.local", "not-a-user-id"):
            self.assertMatrixError(await self.as_request("GET", f"{V3}/account/whoami", user_id=outsider),
                                   403, "M_EXCLUSIVE")
        # Another service's ghost is not this service's to use.
        await self.register_ghost("_lim_bob", token=LIMITED_TOKEN, inhibit_login=True)
        self.assertMatrixError(await self.as_request("GET", f"{V3}/account/whoami", user_id="@_lim_bob:test.local"),
                               403, "M_EXCLUSIVE")
        status, body = await self.as_request("GET", f"{V3}/account/whoami", token=LIMITED_TOKEN,
                                             user_id="@_lim_bob:test.local")
        self.assertEqual((status, body["user_id"]), (200, "@_lim_bob:test.local"), body)
        # A user's own token with ?user_id= is just the user.
        status, body = await self.as_request("GET", f"{V3}/account/whoami", token=alice_token,
                                             user_id="@_bridge_x:test.local")
        self.assertEqual((status, body["user_id"]), (200, alice), body)

    @inline
    async def test_application_service_registration_and_login(self):
        # Outside its namespace, or inside another service's exclusive one: M_EXCLUSIVE.
        for token, name in ((BRIDGE_TOKEN, "alice"), (LIMITED_TOKEN, "_bridge_x"), (BRIDGE_TOKEN, "_lim_x")):
            self.assertMatrixError(await self.request("POST", f"{V3}/register",
                                                      {"type": "m.login.application_service", "username": name},
                                                      token=token), 400, "M_EXCLUSIVE")
        # Only a service registers this way.
        alice, alice_token = await self.user("alice")
        self.assertMatrixError(await self.request("POST", f"{V3}/register",
                                                  {"type": "m.login.application_service", "username": "_bridge_y"},
                                                  token=alice_token), 403, "M_FORBIDDEN")
        # Without inhibit_login the ghost gets a working session.
        body = await self.register_ghost("_bridge_carol", device_id="CAROLDEV")
        self.assertEqual((body["user_id"], body["device_id"]), ("@_bridge_carol:test.local", "CAROLDEV"))
        status, me = await self.request("GET", f"{V3}/account/whoami", token=body["access_token"])
        self.assertEqual((status, me["user_id"], me["device_id"]), (200, "@_bridge_carol:test.local", "CAROLDEV"))

        # Login as a ghost with the as_token.
        login = {"type": "m.login.application_service",
                 "identifier": {"type": "m.id.user", "user": "@_bridge_carol:test.local"}}
        status, session = await self.request("POST", f"{V3}/login", login, token=BRIDGE_TOKEN)
        self.assertEqual(status, 200, session)
        self.assertEqual(session["user_id"], "@_bridge_carol:test.local")
        status, me = await self.request("GET", f"{V3}/account/whoami", token=session["access_token"])
        self.assertEqual((status, me["user_id"]), (200, "@_bridge_carol:test.local"))
        status, flows = await self.request("GET", f"{V3}/login")
        self.assertIn({"type": "m.login.application_service"}, flows["flows"])
        # Not without the as_token, not for someone outside the namespace, not unregistered.
        self.assertMatrixError(await self.request("POST", f"{V3}/login", login), 401, "M_MISSING_TOKEN")
        self.assertMatrixError(await self.request("POST", f"{V3}/login", login, token=alice_token),
                               403, "M_FORBIDDEN")
        outsider = {**login, "identifier": {"type": "m.id.user", "user": "alice"}}
        self.assertMatrixError(await self.request("POST", f"{V3}/login", outsider, token=BRIDGE_TOKEN),
                               403, "M_EXCLUSIVE")
        unknown = {**login, "identifier": {"type": "m.id.user", "user": "_bridge_nobody"}}
        self.assertMatrixError(await self.request("POST", f"{V3}/login", unknown, token=BRIDGE_TOKEN),
                               403, "M_FORBIDDEN")

    @inline
    async def test_others_cannot_register_inside_an_exclusive_namespace(self):
        for name in ("_bridge_mallory", "bridgebot"):
            self.assertMatrixError(await self.request("POST", f"{V3}/register",
                                                      {"username": name, "password": "correct horse battery",
                                                       "auth": {"type": "m.login.dummy"}}), 400, "M_EXCLUSIVE")
            self.assertMatrixError(await self.request("GET", f"{V3}/register/available", query={"username": name}),
                                   400, "M_EXCLUSIVE")
            self.assertMatrixError(await self.request("POST", f"{API}/auth/register",
                                                      {"username": name, "password": "correct horse battery"}),
                                   400, "M_EXCLUSIVE")
        self.assertIsNone(await self.hs.users.get_user("@_bridge_mallory:test.local"))
        # Outside it, or inside a namespace that is not exclusive: allowed.
        await self.register("mallory")
        await self.register("_lim_shared")
        status, body = await self.request("POST", f"{API}/auth/register",
                                          {"username": "_bridgeish", "password": "correct horse battery"})
        self.assertEqual(status, 200, body)

    @inline
    async def test_exclusive_aliases_are_the_services_alone(self):
        alice, alice_token = await self.user("alice")
        room_id = (await self.ok("POST", f"{V3}/createRoom", {}, token=alice_token))["room_id"]
        self.assertMatrixError(await self.request("PUT", f"{V3}/directory/room/{q('#_bridge_x:test.local')}",
                                                  {"room_id": room_id}, token=alice_token), 400, "M_EXCLUSIVE")
        self.assertMatrixError(await self.request("POST", f"{V3}/createRoom", {"room_alias_name": "_bridge_y"},
                                                  token=alice_token), 400, "M_EXCLUSIVE")
        await self.ok("PUT", f"{V3}/directory/room/{q('#bridge_fan:test.local')}", {"room_id": room_id},
                      token=alice_token)
        # The service itself creates portal rooms with aliases of its namespace.
        status, portal = await self.as_request("POST", f"{V3}/createRoom", {"room_alias_name": "_bridge_portal"})
        self.assertEqual(status, 200, portal)
        found = await self.ok("GET", f"{V3}/directory/room/{q('#_bridge_portal:test.local')}", token=alice_token)
        self.assertEqual(found["room_id"], portal["room_id"])

    @inline
    async def test_timestamp_massaging_for_services_only(self):
        alice, alice_token = await self.user("alice")
        room_id = (await self.ok("POST", f"{V3}/createRoom", {"preset": "public_chat"}, token=alice_token))["room_id"]
        ghost = (await self.register_ghost("_bridge_dave", inhibit_login=True))["user_id"]
        status, body = await self.as_request("POST", f"{V3}/join/{q(room_id)}", {}, user_id=ghost)
        self.assertEqual(status, 200, body)
        old = 1_500_000_000_000
        status, sent = await self.as_request("PUT", f"{V3}/rooms/{q(room_id)}/send/m.room.message/ts1",
                                             {"msgtype": "m.text", "body": "from 2017"}, user_id=ghost, ts=str(old))
        self.assertEqual(status, 200, sent)
        event = await self.ok("GET", f"{V3}/rooms/{q(room_id)}/event/{q(sent['event_id'])}", token=alice_token)
        self.assertEqual(event["origin_server_ts"], old)
        status, state = await self.as_request(
            "PUT", f"{V3}/rooms/{q(room_id)}/state/m.room.member/{user_path(ghost)}",
            {"membership": "join", "displayname": "Dave (bridged)"}, user_id=ghost, ts=str(old + 5))
        self.assertEqual(status, 200, state)
        event = await self.ok("GET", f"{V3}/rooms/{q(room_id)}/event/{q(state['event_id'])}", token=alice_token)
        self.assertEqual(event["origin_server_ts"], old + 5)
        self.assertMatrixError(await self.as_request("PUT", f"{V3}/rooms/{q(room_id)}/send/m.room.message/ts2",
                                                     {"body": "x"}, user_id=ghost, ts="yesterday"),
                               400, "M_INVALID_PARAM")
        # From a user, ?ts= changes nothing.
        status, mine = await self.request("PUT", f"{V3}/rooms/{q(room_id)}/send/m.room.message/ts3",
                                          {"msgtype": "m.text", "body": "now"}, token=alice_token,
                                          query={"ts": str(old)})
        self.assertEqual(status, 200, mine)
        event = await self.ok("GET", f"{V3}/rooms/{q(room_id)}/event/{q(mine['event_id'])}", token=alice_token)
        self.assertGreater(event["origin_server_ts"], old + 10 ** 9)

    @inline
    async def test_ping(self):
        status, body = await self.request("POST", "/_matrix/client/v1/appservice/bridge/ping",
                                          {"transaction_id": "ping-1"}, token=BRIDGE_TOKEN)
        self.assertEqual(status, 200, body)
        self.assertIsInstance(body["duration_ms"], int)
        pings = [r for r in self.appservice.received if r[1] == "/_matrix/app/v1/ping"]
        self.assertEqual(pings, [("POST", "/_matrix/app/v1/ping", b"Bearer hs-" + BRIDGE_TOKEN.encode(),
                                  {"transaction_id": "ping-1"})])

        alice, alice_token = await self.user("alice")
        for token in (alice_token, LIMITED_TOKEN):
            self.assertMatrixError(await self.request("POST", "/_matrix/client/v1/appservice/bridge/ping", {},
                                                      token=token), 403, "M_FORBIDDEN")
        self.assertMatrixError(await self.request("POST", "/_matrix/client/v1/appservice/bridge/ping", {}),
                               401, "M_MISSING_TOKEN")
        self.assertMatrixError(await self.request("POST", "/_matrix/client/v1/appservice/limited/ping", {},
                                                  token=LIMITED_TOKEN), 400, "M_URL_NOT_SET")
        self.assertMatrixError(await self.request("POST", "/_matrix/client/v1/appservice/broken/ping", {},
                                                  token=BROKEN_TOKEN), 502, "M_BAD_STATUS")
        status, body = await self.request("POST", "/_matrix/client/v1/appservice/broken/ping", {}, token=BROKEN_TOKEN)
        self.assertEqual((status, body.get("status")), (502, 500), body)
        self.assertMatrixError(await self.request("POST", "/_matrix/client/v1/appservice/gone/ping", {},
                                                  token=GONE_TOKEN), 502, "M_CONNECTION_FAILED")
        # A service that never answers: 504 once the client gives up (made short here).
        client = self.hs.appservice_client
        saved, client.timeout_s = client.timeout_s, 0.5
        try:
            self.assertMatrixError(await self.request("POST", "/_matrix/client/v1/appservice/slow/ping", {},
                                                      token=SLOW_TOKEN), 504, "M_CONNECTION_TIMEOUT")
        finally:
            client.timeout_s = saved


class AppServiceSqliteTests(AppServiceClientApiTests, AppServiceTestCase):
    engine = "sqlite"


class AppServicePostgresTests(AppServiceClientApiTests, AppServiceTestCase):
    engine = "postgres"


class RateLimitExemptionTests(ApiHelpers, AppServiceTestCase):
    """rate_limited: false lifts the limits a user meets (/api/v1 message sends,
    registrations); a service registering its ghosts is never limited per address."""

    config_overrides = {"limits": {"message_send_per_second": 0.001, "message_send_burst": 3,
                                   "register_per_second": 0.001, "register_burst": 3}}

    @inline
    async def test_an_unlimited_service_sends_past_the_limits(self):
        (alice, token), (bob, bob_token), space, channel = await self.setup_server()  # two registrations
        # Ghosts do not count against the address's registrations.
        ghosts = [(await self.register_ghost(f"_bridge_g{i}", inhibit_login=True))["user_id"] for i in range(5)]
        await self.register("carol")  # the third registration from this address
        self.assertMatrixError(await self.request("POST", f"{V3}/register",
                                                  {"username": "dan", "password": "correct horse battery",
                                                   "auth": {"type": "m.login.dummy"}}), 429, "M_LIMIT_EXCEEDED")

        ghost = ghosts[0]
        await self.ok("POST", f"{V3}/rooms/{q(space)}/invite", {"user_id": ghost}, token=token)
        status, body = await self.as_request("POST", f"{V3}/join/{q(space)}", {}, user_id=ghost)
        self.assertEqual(status, 200, body)
        status, body = await self.as_request("POST", f"{API}/channels/{q(channel)}/join", {}, user_id=ghost)
        self.assertEqual(status, 200, body)
        for i in range(6):
            status, body = await self.as_request("POST", f"{API}/channels/{q(channel)}/messages",
                                                 {"content": f"bridged {i}"}, user_id=ghost)
            self.assertEqual(status, 200, body)
        for i in range(3):
            await self.ok("POST", f"{API}/channels/{q(channel)}/messages", {"content": f"bob {i}"}, token=bob_token)
        self.assertMatrixError(await self.request("POST", f"{API}/channels/{q(channel)}/messages",
                                                  {"content": "one too many"}, token=bob_token),
                               429, "M_LIMIT_EXCEEDED")


class ClosedRegistrationTests(AppServiceTestCase):
    config_overrides = {"auth": {"registration_enabled": False}}

    @inline
    async def test_a_service_registers_ghosts_when_registration_is_closed(self):
        self.assertMatrixError(await self.request("POST", f"{V3}/register",
                                                  {"username": "someone", "password": "correct horse battery",
                                                   "auth": {"type": "m.login.dummy"}}), 403, "M_FORBIDDEN")
        body = await self.register_ghost("_bridge_late", inhibit_login=True)
        self.assertEqual(body["user_id"], "@_bridge_late:test.local")


class InvalidRegistrationTests(unittest.TestCase):
    """An invalid registration stops the homeserver before it listens, naming the file."""

    def setUp(self):
        self.tmpdir = os.path.abspath(self.mktemp())
        os.makedirs(self.tmpdir)
        self.bad = os.path.join(self.tmpdir, "bad-bridge.yaml")
        with open(self.bad, "w") as handle:
            handle.write(registration_yaml("bad", None, "tok", "BAD BOT", []))
        self.config_path = write_config(self.tmpdir, f"sqlite:///{self.tmpdir}/d.db",
                                        {"appservice": {"config_files": ["bad-bridge.yaml"]}})

    def test_construction_raises(self):
        with self.assertRaises(RegistrationError) as caught:
            Homeserver(load_config(self.config_path, environ={}), reactor)
        self.assertIn(self.bad, str(caught.exception))
        self.assertIn("sender_localpart", str(caught.exception))

    def test_drocsid_run_refuses_to_start(self):
        status, out, err = run_cli("run", "--config", self.config_path)
        self.assertEqual(status, 1, err)
        self.assertEqual(len(err.strip().splitlines()), 1, err)
        self.assertIn(f"drocsid: invalid application service registration {self.bad}", err)
        self.assertIn("sender_localpart", err)
        self.assertNotIn("listening", out)

    def test_a_missing_file_refuses_to_start(self):
        config_path = write_config(self.tmpdir, f"sqlite:///{self.tmpdir}/d.db",
                                   {"appservice": {"config_files": ["nowhere.yaml"]}})
        status, out, err = run_cli("run", "--config", config_path)
        self.assertEqual(status, 1, err)
        self.assertIn(os.path.join(self.tmpdir, "nowhere.yaml"), err)
        self.assertIn("does not exist", err)
