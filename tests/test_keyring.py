"""The keyring (fetching, checking and caching other servers' keys; verifying signed
JSON and received events) and the notary routes, against fake remote servers that
sign with real keys."""

from __future__ import annotations

import copy
import os
from types import SimpleNamespace

from signedjson.key import encode_verify_key_base64, generate_signing_key, get_verify_key
from signedjson.sign import sign_json, verify_signed_json
from twisted.internet import defer, reactor
from twisted.trial import unittest

from federation import key_server
from federation.key_server import server_keys_response
from federation.keyring import KEY_SERVER_PATH, NOTARY_QUERY_PATH, KeyLookupError, Keyring, SignatureError
from federation.notary import register_routes
from homeserver.events.builder import build_event
from homeserver.events.event import Event
from homeserver.events.room_versions import V10, V11, V12
from homeserver.events.signing import key_id, sign_event
from homeserver.http.router import Router
from homeserver.http.site import build_site
from storage.database import DatabasePool
from storage.migrations import migrate
from storage.stores.server_keys import ServerKeyStore
from tests.support.databases import TestDatabase
from tests.support.server import HttpClient, inline

HOUR_MS = 60 * 60 * 1000
DAY_MS = 24 * HOUR_MS
START_MS = 1_700_000_000_000


class FakeClock:
    def __init__(self, now_ms: int = START_MS):
        self.now_ms = now_ms

    def time_ms(self) -> int:
        return self.now_ms

    def time(self) -> float:
        return self.now_ms / 1000

    def advance(self, ms: int) -> None:
        self.now_ms += ms


class Unreachable(Exception):
    pass


def signed_keys(server_name: str, signing_key, valid_until_ts: int, old: dict | None = None) -> dict:
    """A key response like ``server_keys_response``, with a chosen validity and old keys."""
    body = {"server_name": server_name, "valid_until_ts": valid_until_ts,
            "verify_keys": {key_id(signing_key): {"key": encode_verify_key_base64(get_verify_key(signing_key))}},
            "old_verify_keys": {key_id(k): {"key": encode_verify_key_base64(get_verify_key(k)), "expired_ts": ts}
                                for k, ts in (old or {}).items()}}
    return sign_json(body, server_name, signing_key)


class FakeFederation:
    """Remote servers as the keyring's client sees them. Each publishes its key (or what
    ``published`` says); ``notaries`` answer key queries from what they know of others."""

    def __init__(self, clock: FakeClock):
        self.clock = clock
        self.keys: dict[str, object] = {}
        self.published: dict[str, dict] = {}
        self.unreachable: set[str] = set()
        self.notaries: set[str] = set()
        self.notary_answers: dict[str, list] = {}  # notary -> exact answer, instead of the honest one
        self.requests: list[tuple[str, str, str]] = []
        self.hold: defer.Deferred | None = None

    def add_server(self, name: str, version: str = "a1") -> object:
        self.keys[name] = generate_signing_key(version)
        return self.keys[name]

    def key_response(self, name: str) -> dict | None:
        if name in self.published:
            return copy.deepcopy(self.published[name])
        if name in self.keys:
            return server_keys_response(name, self.keys[name], self.clock.time_ms())
        return None

    async def get_json(self, destination: str, path: str, query=None, timeout=None):
        self.requests.append(("GET", destination, path))
        if self.hold is not None:
            await self.hold
        if destination in self.unreachable:
            raise Unreachable(f"{destination} is unreachable")
        assert path == KEY_SERVER_PATH, path
        response = self.key_response(destination)
        if response is None:
            raise Unreachable(f"{destination} does not exist")
        return response

    async def post_json(self, destination: str, path: str, body: dict, timeout=None):
        self.requests.append(("POST", destination, path))
        if destination in self.unreachable or destination not in self.notaries:
            raise Unreachable(f"{destination} is not a notary")
        assert path == NOTARY_QUERY_PATH, path
        if destination in self.notary_answers:
            return {"server_keys": copy.deepcopy(self.notary_answers[destination])}
        answers = []
        for server_name in body["server_keys"]:
            response = self.key_response(server_name)  # the notary reaches servers we cannot
            if response is not None:
                answers.append(sign_json(response, destination, self.keys[destination]))
        return {"server_keys": answers}

    def count(self, method: str, destination: str) -> int:
        return sum(1 for m, d, _ in self.requests if (m, d) == (method, destination))


class MemoryKeyStore:
    """A store that answers without leaving the reactor thread, so concurrent lookups
    reach the fetch together."""

    def __init__(self):
        self.keys: dict = {}

    async def store_keys(self, keys, key_json):
        for key in keys:
            self.keys[(key.server_name, key.key_id)] = (key, key_json)

    async def get_keys(self, server_name, key_ids):
        return {k: self.keys[(server_name, k)][0] for k in key_ids if (server_name, k) in self.keys}

    async def get_all_keys(self, server_name):
        return [key for (server, _), (key, _) in self.keys.items() if server == server_name]

    async def get_key_responses(self, server_name):
        return [copy.deepcopy(j) for (server, _), (_, j) in self.keys.items() if server == server_name]


async def sqlite_store(test: unittest.TestCase) -> ServerKeyStore:
    tmpdir = os.path.abspath(test.mktemp())
    os.makedirs(tmpdir)
    database = TestDatabase("sqlite", tmpdir)
    db = DatabasePool.from_url(reactor, database.url, max_connections=2)
    db.start()
    test.addCleanup(db.close)
    await migrate(db)
    return ServerKeyStore(db)


class KeyringTestCase(unittest.TestCase):
    @inline
    async def setUp(self):
        self.clock = FakeClock()
        self.remote = FakeFederation(self.clock)
        self.remote_key = self.remote.add_server("remote.test")
        self.our_key = generate_signing_key("ours")
        self.store = await sqlite_store(self)

    def keyring(self, trusted: tuple[str, ...] = (), store=None) -> Keyring:
        return Keyring(store or self.store, self.remote, self.clock, "us.test", self.our_key, list(trusted))

    async def assertLookupFails(self, keyring: Keyring, server_name: str, kid: str, ts: int, reason: str):
        with self.assertRaises(KeyLookupError) as caught:
            await keyring.get_verify_key(server_name, kid, ts)
        self.assertIn(reason, str(caught.exception))
        return caught.exception


def same_key(a, b) -> bool:
    return encode_verify_key_base64(a) == encode_verify_key_base64(b)


class KeyLookupTests(KeyringTestCase):
    @inline
    async def test_our_own_key_needs_no_network(self):
        keyring = self.keyring()
        found = await keyring.get_verify_key("us.test", key_id(self.our_key), START_MS)
        self.assertTrue(same_key(found, get_verify_key(self.our_key)))
        await self.assertLookupFails(keyring, "us.test", "ed25519:other", START_MS, "not our signing key")
        self.assertEqual(self.remote.requests, [])

    @inline
    async def test_fetched_key_is_cached_in_memory_and_in_the_database(self):
        kid = key_id(self.remote_key)
        found = await self.keyring().get_verify_key("remote.test", kid, START_MS)
        self.assertTrue(same_key(found, get_verify_key(self.remote_key)))
        keyring = self.keyring()
        await keyring.get_verify_key("remote.test", kid, START_MS)
        await keyring.get_verify_key("remote.test", kid, START_MS + HOUR_MS)
        self.assertEqual(self.remote.requests, [("GET", "remote.test", KEY_SERVER_PATH)])

    @inline
    async def test_expired_key_is_fetched_again(self):
        keyring = self.keyring()
        kid = key_id(self.remote_key)
        await keyring.get_verify_key("remote.test", kid, START_MS)  # valid for a day from now
        self.clock.advance(DAY_MS + HOUR_MS)
        await keyring.get_verify_key("remote.test", kid, START_MS)  # signed back then: still fine
        self.assertEqual(self.remote.count("GET", "remote.test"), 1)
        await keyring.get_verify_key("remote.test", kid, self.clock.time_ms())
        self.assertEqual(self.remote.count("GET", "remote.test"), 2)

    @inline
    async def test_validity_is_capped_at_seven_days(self):
        kid = key_id(self.remote_key)
        self.remote.published["remote.test"] = signed_keys("remote.test", self.remote_key, START_MS + 30 * DAY_MS)
        keyring = self.keyring()
        await keyring.get_verify_key("remote.test", kid, START_MS + 6 * DAY_MS)
        error = await self.assertLookupFails(keyring, "remote.test", kid, START_MS + 10 * DAY_MS,
                                             f"valid only until {START_MS + 7 * DAY_MS}")
        self.assertEqual(error.server_name, "remote.test")
        self.assertEqual(self.remote.count("GET", "remote.test"), 2)

    @inline
    async def test_old_key_is_valid_only_before_it_expired(self):
        old_key = generate_signing_key("old")
        expired_ts = START_MS - HOUR_MS
        self.remote.published["remote.test"] = signed_keys("remote.test", self.remote_key, START_MS + DAY_MS,
                                                           old={old_key: expired_ts})
        keyring = self.keyring()
        found = await keyring.get_verify_key("remote.test", key_id(old_key), expired_ts - 1)
        self.assertTrue(same_key(found, get_verify_key(old_key)))
        await self.assertLookupFails(keyring, "remote.test", key_id(old_key), expired_ts,
                                     f"key expired at {expired_ts}")

    @inline
    async def test_key_the_server_does_not_publish(self):
        await self.assertLookupFails(self.keyring(), "remote.test", "ed25519:gone", START_MS, "key not found")

    @inline
    async def test_only_ed25519_keys_are_looked_up(self):
        await self.assertLookupFails(self.keyring(), "remote.test", "curve25519:x", START_MS, "only ed25519")
        self.assertEqual(self.remote.requests, [])

    @inline
    async def test_response_for_another_server_is_refused(self):
        evil_key = self.remote.add_server("evil.test")
        self.remote.published["evil.test"] = signed_keys("remote.test", evil_key, START_MS + DAY_MS)
        await self.assertLookupFails(self.keyring(), "evil.test", key_id(evil_key), START_MS, "not evil.test")
        self.assertEqual(await self.store.get_all_keys("remote.test"), [])

    @inline
    async def test_tampered_response_is_refused(self):
        response = signed_keys("remote.test", self.remote_key, START_MS + DAY_MS)
        response["valid_until_ts"] += DAY_MS
        self.remote.published["remote.test"] = response
        await self.assertLookupFails(self.keyring(), "remote.test", key_id(self.remote_key), START_MS,
                                     "does not verify")
        self.assertEqual(await self.store.get_all_keys("remote.test"), [])

    @inline
    async def test_response_not_signed_by_its_own_keys_is_refused(self):
        stranger = generate_signing_key(self.remote_key.version)  # same key ID, other key
        response = signed_keys("remote.test", self.remote_key, START_MS + DAY_MS)
        response.pop("signatures")
        self.remote.published["remote.test"] = sign_json(response, "remote.test", stranger)
        await self.assertLookupFails(self.keyring(), "remote.test", key_id(self.remote_key), START_MS,
                                     "does not verify")
        unsigned = signed_keys("remote.test", self.remote_key, START_MS + DAY_MS)
        unsigned.pop("signatures")
        self.remote.published["remote.test"] = unsigned
        await self.assertLookupFails(self.keyring(), "remote.test", key_id(self.remote_key), START_MS,
                                     "not signed by any of its verify_keys")

    @inline
    async def test_failing_server_is_not_asked_again_for_a_minute(self):
        self.remote.unreachable.add("remote.test")
        keyring = self.keyring()
        kid = key_id(self.remote_key)
        await self.assertLookupFails(keyring, "remote.test", kid, START_MS, "remote.test is unreachable")
        await self.assertLookupFails(keyring, "remote.test", kid, START_MS, "remote.test is unreachable")
        self.assertEqual(self.remote.count("GET", "remote.test"), 1)
        self.clock.advance(61 * 1000)
        self.remote.unreachable.clear()
        await keyring.get_verify_key("remote.test", kid, self.clock.time_ms())
        self.assertEqual(self.remote.count("GET", "remote.test"), 2)

    @inline
    async def test_concurrent_lookups_share_one_fetch(self):
        keyring = self.keyring(store=MemoryKeyStore())
        self.remote.hold = defer.Deferred()
        kid = key_id(self.remote_key)
        lookups = [defer.ensureDeferred(keyring.get_verify_key("remote.test", kid, START_MS)) for _ in range(3)]
        self.assertEqual(len(self.remote.requests), 1)
        self.remote.hold.callback(None)
        for found in await defer.gatherResults(lookups):
            self.assertTrue(same_key(found, get_verify_key(self.remote_key)))
        self.assertEqual(len(self.remote.requests), 1)

    @inline
    async def test_concurrent_lookups_of_a_failing_server_fail_together(self):
        keyring = self.keyring(store=MemoryKeyStore())
        self.remote.unreachable.add("remote.test")
        self.remote.hold = defer.Deferred()
        lookups = [defer.ensureDeferred(keyring.get_verify_key("remote.test", f"ed25519:k{i}", START_MS))
                   for i in range(3)]
        self.remote.hold.callback(None)
        for lookup in lookups:
            with self.assertRaises(KeyLookupError):
                await lookup
        self.assertEqual(len(self.remote.requests), 1)


class NotaryLookupTests(KeyringTestCase):
    @inline
    async def setUp(self):
        await super().setUp()
        self.notary_key = self.remote.add_server("notary.test")
        self.remote.notaries.add("notary.test")
        self.remote.unreachable.add("remote.test")

    @inline
    async def test_key_comes_through_the_notary(self):
        keyring = self.keyring(trusted=("notary.test",))
        found = await keyring.get_verify_key("remote.test", key_id(self.remote_key), START_MS)
        self.assertTrue(same_key(found, get_verify_key(self.remote_key)))
        # The notary's own key came from the notary directly.
        self.assertEqual(self.remote.requests, [("GET", "remote.test", KEY_SERVER_PATH),
                                                ("POST", "notary.test", NOTARY_QUERY_PATH),
                                                ("GET", "notary.test", KEY_SERVER_PATH)])
        stored, = await self.store.get_key_responses("remote.test")
        self.assertIn("notary.test", stored["signatures"])

    @inline
    async def test_notary_signature_is_required(self):
        answer = server_keys_response("remote.test", self.remote_key, START_MS)
        self.remote.notary_answers["notary.test"] = [answer]
        await self.assertLookupFails(self.keyring(trusted=("notary.test",)), "remote.test",
                                     key_id(self.remote_key), START_MS, "not signed by notary notary.test")
        self.assertEqual(await self.store.get_all_keys("remote.test"), [])

    @inline
    async def test_notary_signature_by_a_wrong_key_is_refused(self):
        impostor = generate_signing_key(self.notary_key.version)
        answer = sign_json(server_keys_response("remote.test", self.remote_key, START_MS), "notary.test", impostor)
        self.remote.notary_answers["notary.test"] = [answer]
        await self.assertLookupFails(self.keyring(trusted=("notary.test",)), "remote.test",
                                     key_id(self.remote_key), START_MS, "does not verify")

    @inline
    async def test_notary_cannot_alter_a_servers_keys(self):
        altered = server_keys_response("remote.test", self.remote_key, START_MS)
        swapped = encode_verify_key_base64(get_verify_key(self.notary_key))
        altered["verify_keys"][key_id(self.remote_key)]["key"] = swapped
        self.remote.notary_answers["notary.test"] = [sign_json(altered, "notary.test", self.notary_key)]
        await self.assertLookupFails(self.keyring(trusted=("notary.test",)), "remote.test",
                                     key_id(self.remote_key), START_MS, "does not verify")
        self.assertEqual(await self.store.get_all_keys("remote.test"), [])

    @inline
    async def test_next_notary_is_tried(self):
        self.remote.add_server("second.test")
        self.remote.notaries.add("second.test")
        self.remote.unreachable.add("notary.test")
        keyring = self.keyring(trusted=("notary.test", "second.test"))
        await keyring.get_verify_key("remote.test", key_id(self.remote_key), START_MS)
        self.assertEqual(self.remote.count("POST", "second.test"), 1)

    @inline
    async def test_notary_is_not_asked_about_itself(self):
        self.remote.unreachable.add("notary.test")
        await self.assertLookupFails(self.keyring(trusted=("notary.test",)), "notary.test",
                                     key_id(self.notary_key), START_MS, "notary.test is unreachable")
        self.assertEqual(self.remote.count("POST", "notary.test"), 0)


class VerifyJsonTests(KeyringTestCase):
    @inline
    async def test_good_signature(self):
        signed = sign_json({"hello": "world"}, "remote.test", self.remote_key)
        await self.keyring().verify_json("remote.test", signed, START_MS)

    @inline
    async def test_tampered_object(self):
        signed = sign_json({"hello": "world"}, "remote.test", self.remote_key)
        signed["hello"] = "there"
        with self.assertRaises(SignatureError) as caught:
            await self.keyring().verify_json("remote.test", signed, START_MS)
        self.assertIn("does not verify", str(caught.exception))

    @inline
    async def test_missing_signature(self):
        signed = sign_json({"hello": "world"}, "other.test", self.remote_key)
        with self.assertRaises(SignatureError) as caught:
            await self.keyring().verify_json("remote.test", signed, START_MS)
        self.assertIn("not signed by remote.test", str(caught.exception))

    @inline
    async def test_signature_by_an_unknown_key(self):
        signed = sign_json({"hello": "world"}, "remote.test", generate_signing_key("unknown"))
        with self.assertRaises(SignatureError) as caught:
            await self.keyring().verify_json("remote.test", signed, START_MS)
        self.assertIn("ed25519:unknown", str(caught.exception))

    @inline
    async def test_key_not_valid_at_the_time(self):
        signed = sign_json({"hello": "world"}, "remote.test", self.remote_key)
        with self.assertRaises(SignatureError) as caught:
            await self.keyring().verify_json("remote.test", signed, START_MS + 2 * DAY_MS)
        self.assertIn("valid only until", str(caught.exception))

    @inline
    async def test_one_good_signature_is_enough(self):
        signed = sign_json({"hello": "world"}, "remote.test", generate_signing_key("unknown"))
        sign_json(signed, "remote.test", self.remote_key)
        await self.keyring().verify_json("remote.test", signed, START_MS)


class VerifyEventTests(KeyringTestCase):
    def member_event(self, version=V11, content=None, sender="@alice:remote.test", server_name="remote.test",
                     signing_key=None) -> Event:
        return build_event(version, room_id="!room:resident.test", sender=sender, event_type="m.room.member",
                           state_key=sender, content=content or {"membership": "join"},
                           prev_events=["$prev"], auth_events=["$auth"], depth=5, origin_server_ts=START_MS,
                           server_name=server_name, signing_key=signing_key or self.remote_key)

    @staticmethod
    def altered(event: Event, change) -> Event:
        pdu = copy.deepcopy(event.pdu)
        change(pdu)
        return Event(pdu, event.room_version, event.event_id)

    @inline
    async def test_good_event_in_each_room_version(self):
        for version in (V10, V11, V12):
            await self.keyring().verify_event(self.member_event(version))

    @inline
    async def test_our_own_event_needs_no_network(self):
        event = self.member_event(sender="@me:us.test", server_name="us.test", signing_key=self.our_key)
        await self.keyring().verify_event(event)
        self.assertEqual(self.remote.requests, [])

    @inline
    async def test_tampered_content_fails(self):
        event = self.altered(self.member_event(), lambda pdu: pdu["content"].update(membership="leave"))
        with self.assertRaises(SignatureError) as caught:
            await self.keyring().verify_event(event)
        self.assertIn("does not verify", str(caught.exception))

    @inline
    async def test_content_outside_the_redacted_form_is_left_to_the_hash_check(self):
        event = self.altered(self.member_event(), lambda pdu: pdu["content"].update(displayname="Mallory"))
        await self.keyring().verify_event(event)

    @inline
    async def test_missing_signature_fails(self):
        event = self.altered(self.member_event(), lambda pdu: pdu.pop("signatures"))
        with self.assertRaises(SignatureError) as caught:
            await self.keyring().verify_event(event)
        self.assertIn("not signed by remote.test", str(caught.exception))

    @inline
    async def test_signature_by_another_server_is_not_enough(self):
        intruder_key = self.remote.add_server("intruder.test")
        event = self.member_event(server_name="intruder.test", signing_key=intruder_key)
        with self.assertRaises(SignatureError):
            await self.keyring().verify_event(event)

    @inline
    async def test_key_must_be_valid_at_origin_server_ts(self):
        event = self.altered(self.member_event(), lambda pdu: pdu.update(origin_server_ts=START_MS + 2 * DAY_MS))
        sign_event(V11, event.pdu, "remote.test", self.remote_key)
        with self.assertRaises(SignatureError) as caught:
            await self.keyring().verify_event(event)
        self.assertIn("valid only until", str(caught.exception))

    @inline
    async def test_restricted_join_needs_the_authorising_server(self):
        resident_key = self.remote.add_server("resident.test")
        event = self.member_event(content={"membership": "join",
                                           "join_authorised_via_users_server": "@bob:resident.test"})
        with self.assertRaises(SignatureError) as caught:
            await self.keyring().verify_event(event)
        self.assertIn("not signed by resident.test", str(caught.exception))
        sign_event(V11, event.pdu, "resident.test", resident_key)
        await self.keyring().verify_event(event)

    @inline
    async def test_authorising_server_is_not_needed_for_a_leave(self):
        event = self.member_event(content={"membership": "leave",
                                           "join_authorised_via_users_server": "@bob:resident.test"})
        await self.keyring().verify_event(event)


class NotaryRouteTests(unittest.TestCase):
    """The notary routes on a real listener, in front of a keyring with fake remotes."""

    @inline
    async def setUp(self):
        self.clock = FakeClock()
        self.remote = FakeFederation(self.clock)
        self.remote_key = self.remote.add_server("remote.test")
        self.notary_key = generate_signing_key("notary")
        store = await sqlite_store(self)
        config = SimpleNamespace(
            server_name="notary.test", limits=SimpleNamespace(max_request_body_bytes=64 * 1024),
            media=SimpleNamespace(max_upload_bytes=64 * 1024),
            server=SimpleNamespace(cors_allow_origin="*", x_forwarded=False))
        hs = SimpleNamespace(config=config, signing_key=self.notary_key, clock=self.clock,
                             keyring=Keyring(store, self.remote, self.clock, "notary.test", self.notary_key, []))
        router = Router()
        key_server.register_routes(router, hs)
        register_routes(router, hs)
        port = reactor.listenTCP(0, build_site(router, config, reactor), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        self.base_url = f"http://127.0.0.1:{port.getHost().port}"
        self.client = HttpClient(self.base_url)
        self.addCleanup(lambda: defer.ensureDeferred(self.client.close()))

    def assertCountersigned(self, response: dict, server_name: str, server_key) -> None:
        verify_signed_json(response, server_name, get_verify_key(server_key))
        verify_signed_json(response, "notary.test", get_verify_key(self.notary_key))

    @inline
    async def test_get_a_remote_servers_keys(self):
        status, body = await self.client.request("GET", "/_matrix/key/v2/query/remote.test")
        self.assertEqual(status, 200, body)
        response, = body["server_keys"]
        self.assertEqual(response["server_name"], "remote.test")
        self.assertCountersigned(response, "remote.test", self.remote_key)
        # Served from the store the second time.
        status, body = await self.client.request("GET", "/_matrix/key/v2/query/remote.test")
        self.assertEqual(len(body["server_keys"]), 1)
        self.assertEqual(self.remote.count("GET", "remote.test"), 1)

    @inline
    async def test_stored_keys_too_short_lived_are_fetched_again(self):
        await self.client.request("GET", "/_matrix/key/v2/query/remote.test")
        self.clock.advance(HOUR_MS)
        status, body = await self.client.request("GET", "/_matrix/key/v2/query/remote.test",
                                                 query={"minimum_valid_until_ts": START_MS + DAY_MS + HOUR_MS})
        self.assertEqual(status, 200, body)
        self.assertEqual(self.remote.count("GET", "remote.test"), 2)
        self.assertEqual(body["server_keys"][-1]["valid_until_ts"], START_MS + DAY_MS + HOUR_MS)

    @inline
    async def test_our_own_keys(self):
        status, body = await self.client.request("GET", "/_matrix/key/v2/query/notary.test")
        self.assertEqual(status, 200, body)
        response, = body["server_keys"]
        verify_signed_json(response, "notary.test", get_verify_key(self.notary_key))
        self.assertEqual(self.remote.requests, [])

    @inline
    async def test_unknown_and_unreachable_servers_give_nothing(self):
        self.remote.unreachable.add("down.test")
        for server_name in ("nowhere.test", "down.test", "not a server"):
            status, body = await self.client.request("GET", f"/_matrix/key/v2/query/{server_name}")
            self.assertEqual((status, body), (200, {"server_keys": []}))

    @inline
    async def test_post_query_for_several_servers(self):
        other_key = self.remote.add_server("other.test")
        status, body = await self.client.request("POST", "/_matrix/key/v2/query", {"server_keys": {
            "remote.test": {key_id(self.remote_key): {"minimum_valid_until_ts": START_MS}},
            "other.test": {},
            "nowhere.test": {"ed25519:x": {}},
            "notary.test": {}}})
        self.assertEqual(status, 200, body)
        by_server = {r["server_name"]: r for r in body["server_keys"]}
        self.assertEqual(sorted(by_server), ["notary.test", "other.test", "remote.test"])
        self.assertCountersigned(by_server["remote.test"], "remote.test", self.remote_key)
        self.assertCountersigned(by_server["other.test"], "other.test", other_key)
        status, body = await self.client.request("POST", "/_matrix/key/v2/query", {"server_keys": {}})
        self.assertEqual((status, body), (200, {"server_keys": []}))

    @inline
    async def test_bad_requests(self):
        cases = [
            (b"not json", "M_NOT_JSON"),
            (b"[]", "M_BAD_JSON"),
            (b'{"server_keys": []}', "M_BAD_JSON"),
            (b'{"server_keys": {"remote.test": []}}', "M_BAD_JSON"),
            (b'{"server_keys": {"remote.test": {"ed25519:a": 5}}}', "M_BAD_JSON"),
            (b'{"server_keys": {"remote.test": {"ed25519:a": {"minimum_valid_until_ts": "soon"}}}}', "M_BAD_JSON"),
        ]
        for raw, errcode in cases:
            status, body = await self.client.request("POST", "/_matrix/key/v2/query", raw=raw)
            self.assertEqual((status, body["errcode"]), (400, errcode), raw)
        status, body = await self.client.request("GET", "/_matrix/key/v2/query/remote.test",
                                                 query={"minimum_valid_until_ts": "soon"})
        self.assertEqual((status, body["errcode"]), (400, "M_INVALID_PARAM"))
        self.assertEqual(self.remote.requests, [])

    @inline
    async def test_a_keyring_trusts_keys_served_by_our_notary(self):
        """End to end: another server's keyring, which cannot reach remote.test, asks
        this notary over HTTP."""
        notary_url = self.base_url

        async def over_http(method: str, path: str, body=None):
            client = HttpClient(notary_url)
            try:
                status, answer = await client.request(method, path, body)
            finally:
                await client.close()
            if status != 200:
                raise Unreachable(f"notary answered {status}")
            return answer

        class ThroughOurNotary(FakeFederation):
            async def get_json(self, destination, path, query=None, timeout=None):
                if destination == "notary.test":
                    self.requests.append(("GET", destination, path))
                    return await over_http("GET", path)
                return await super().get_json(destination, path, query, timeout)

            async def post_json(self, destination, path, body, timeout=None):
                self.requests.append(("POST", destination, path))
                return await over_http("POST", path, body)

        asker_client = ThroughOurNotary(self.clock)
        asker_client.unreachable.add("remote.test")
        keyring = Keyring(await sqlite_store(self), asker_client, self.clock, "asker.test",
                          generate_signing_key("asker"), ["notary.test"])
        found = await keyring.get_verify_key("remote.test", key_id(self.remote_key), START_MS)
        self.assertTrue(same_key(found, get_verify_key(self.remote_key)))
        self.assertEqual(asker_client.requests, [("GET", "remote.test", KEY_SERVER_PATH),
                                                 ("POST", "notary.test", NOTARY_QUERY_PATH),
                                                 ("GET", "notary.test", KEY_SERVER_PATH)])
        self.assertEqual(self.remote.count("GET", "remote.test"), 1)
