"""End-to-end encryption over HTTP, on both engines: key upload, query and claim,
cross-signing with its signatures, send-to-device, device-list changes in /sync and
/keys/changes, and the absent key backup."""

from __future__ import annotations

import json
from urllib.parse import quote

from signedjson.key import (decode_signing_key_base64, encode_signing_key_base64, encode_verify_key_base64,
                            generate_signing_key, get_verify_key)
from signedjson.sign import sign_json
from twisted.internet import defer, reactor

from homeserver.app import Homeserver
from homeserver.config import load_config
from homeserver.notifier import StreamToken
from tests.support.server import HomeserverTestCase, HttpClient, inline

V3 = "/_matrix/client/v3"
PASSWORD = "correct horse battery"


def q(value: str) -> str:
    return quote(value, safe="")


def public_key(signing_key) -> str:
    return encode_verify_key_base64(get_verify_key(signing_key))


def cross_signing_key():
    """A fresh ed25519 key whose key ID is its own public key, as cross-signing keys are."""
    key = generate_signing_key("tmp")
    return decode_signing_key_base64("ed25519", public_key(key), encode_signing_key_base64(key))


class E2ETestCase(HomeserverTestCase):
    async def user(self, name: str) -> dict:
        """Register: {access_token, user_id, device_id} plus a device signing key."""
        body = await self.register(name)
        body["signing_key"] = generate_signing_key(body["device_id"])
        return body

    async def second_device(self, name: str) -> dict:
        status, body = await self.login(name)
        self.assertEqual(status, 200, body)
        body["signing_key"] = generate_signing_key(body["device_id"])
        return body

    async def ok(self, method: str, path: str, body=None, *, who: dict, **kwargs) -> dict:
        status, answer = await self.request(method, f"{V3}{path}", body, token=who["access_token"], **kwargs)
        self.assertEqual(status, 200, answer)
        return answer

    def device_keys(self, who: dict) -> dict:
        keys = {
            "user_id": who["user_id"], "device_id": who["device_id"],
            "algorithms": ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
            "keys": {f"curve25519:{who['device_id']}": "curve" + who["device_id"],
                     f"ed25519:{who['device_id']}": public_key(who["signing_key"])},
        }
        return sign_json(keys, who["user_id"], who["signing_key"])

    def otk(self, who: dict, key: str, fallback: bool = False) -> dict:
        body = {"key": key, **({"fallback": True} if fallback else {})}
        return sign_json(body, who["user_id"], who["signing_key"])

    async def upload(self, who: dict, **body) -> dict:
        return await self.ok("POST", "/keys/upload", body, who=who)

    async def sync(self, who: dict, since: str | None = None, **params) -> dict:
        query = {k: str(v) for k, v in params.items()}
        if since:
            query["since"] = since
        return await self.ok("GET", "/sync", who=who, query=query)

    async def shared_room(self, owner: dict, *others: dict) -> str:
        room_id = (await self.ok("POST", "/createRoom", {"preset": "public_chat"}, who=owner))["room_id"]
        for other in others:
            await self.ok("POST", f"/join/{q(room_id)}", {}, who=other)
        return room_id

    async def cross_signing(self, who: dict, auth: dict | None = None):
        """Upload master, self-signing and user-signing keys; returns (status, body, keys)."""
        master, self_signing, user_signing = cross_signing_key(), cross_signing_key(), cross_signing_key()
        user_id = who["user_id"]

        def key(signing_key, usage):
            return {"user_id": user_id, "usage": [usage], "keys": {f"ed25519:{public_key(signing_key)}":
                                                                    public_key(signing_key)}}
        body = {"master_key": key(master, "master"),
                "self_signing_key": sign_json(key(self_signing, "self_signing"), user_id, master),
                "user_signing_key": sign_json(key(user_signing, "user_signing"), user_id, master)}
        if auth is not None:
            body["auth"] = auth
        status, answer = await self.request("POST", f"{V3}/keys/device_signing/upload", body,
                                            token=who["access_token"])
        return status, answer, {"master": master, "self_signing": self_signing, "user_signing": user_signing,
                                "body": body}


    async def restart(self) -> None:
        """Stop the homeserver and start a new one on the same database."""
        await self.client.close()
        await self.hs.stop()
        self.hs = Homeserver(load_config(self.config_path, environ={}), reactor)
        await self.hs.start()
        self.addCleanup(lambda: defer.ensureDeferred(self.hs.stop()))
        self.client = HttpClient(f"http://127.0.0.1:{self.hs.listening_port}")
        self.addCleanup(lambda: defer.ensureDeferred(self.client.close()))


class E2ETests:
    # -- upload, query, claim -----------------------------------------------------------

    @inline
    async def test_upload_query_claim_and_fallback(self):
        alice, bob = await self.user("alice"), await self.user("bob")
        await self.shared_room(alice, bob)
        counts = await self.upload(alice, device_keys=self.device_keys(alice),
                                   one_time_keys={"signed_curve25519:AAAA": self.otk(alice, "k1"),
                                                  "signed_curve25519:AAAB": self.otk(alice, "k2")},
                                   fallback_keys={"signed_curve25519:FFFF": self.otk(alice, "fb", fallback=True)})
        self.assertEqual(counts["one_time_key_counts"], {"signed_curve25519": 2})
        first = await self.sync(alice)
        self.assertEqual(first["device_one_time_keys_count"], {"signed_curve25519": 2})
        self.assertEqual(first["device_unused_fallback_key_types"], ["signed_curve25519"])

        query = await self.ok("POST", "/keys/query", {"device_keys": {alice["user_id"]: []}}, who=bob)
        device = query["device_keys"][alice["user_id"]][alice["device_id"]]
        self.assertEqual(device["keys"], self.device_keys(alice)["keys"])
        self.assertEqual(device["signatures"], self.device_keys(alice)["signatures"])
        self.assertIn("unsigned", device)
        self.assertEqual(query["failures"], {})
        # A named device that does not exist is simply absent.
        query = await self.ok("POST", "/keys/query", {"device_keys": {alice["user_id"]: ["NOPE"]}}, who=bob)
        self.assertEqual(query["device_keys"][alice["user_id"]], {})

        claim = {"one_time_keys": {alice["user_id"]: {alice["device_id"]: "signed_curve25519"}}}
        claimed = []
        for _ in range(2):
            answer = await self.ok("POST", "/keys/claim", claim, who=bob)
            [(key_id, key)] = answer["one_time_keys"][alice["user_id"]][alice["device_id"]].items()
            claimed.append((key_id, key["key"]))
        self.assertEqual(sorted(claimed), [("signed_curve25519:AAAA", "k1"), ("signed_curve25519:AAAB", "k2")])
        second = await self.sync(alice, first["next_batch"])
        self.assertEqual(second["device_one_time_keys_count"], {"signed_curve25519": 0})
        self.assertEqual(second["device_unused_fallback_key_types"], ["signed_curve25519"])

        # Out of one-time keys: the fallback key, again and again, and now marked used.
        for _ in range(2):
            answer = await self.ok("POST", "/keys/claim", claim, who=bob)
            self.assertEqual(answer["one_time_keys"][alice["user_id"]][alice["device_id"]],
                             {"signed_curve25519:FFFF": self.otk(alice, "fb", fallback=True)})
        third = await self.sync(alice, second["next_batch"])
        self.assertEqual(third["device_unused_fallback_key_types"], [])
        # A new fallback key is unused again.
        await self.upload(alice, fallback_keys={"signed_curve25519:GGGG": self.otk(alice, "fb2", fallback=True)})
        fourth = await self.sync(alice, third["next_batch"])
        self.assertEqual(fourth["device_unused_fallback_key_types"], ["signed_curve25519"])

        # Unknown devices and users give nothing; other servers go to failures.
        answer = await self.ok("POST", "/keys/claim", {"one_time_keys": {
            alice["user_id"]: {"NOPE": "signed_curve25519"}, "@carol:elsewhere.example": {"X": "signed_curve25519"}}},
            who=bob)
        self.assertEqual(answer["one_time_keys"], {})
        self.assertIn("elsewhere.example", answer["failures"])

    @inline
    async def test_device_keys_must_be_the_requesters(self):
        alice, bob = await self.user("alice"), await self.user("bob")
        wrong_device = dict(self.device_keys(alice), device_id="OTHERDEVICE")
        self.assertMatrixError(await self.request("POST", f"{V3}/keys/upload", {"device_keys": wrong_device},
                                                  token=alice["access_token"]), 400, "M_INVALID_PARAM")
        self.assertMatrixError(await self.request("POST", f"{V3}/keys/upload",
                                                  {"device_keys": self.device_keys(bob)},
                                                  token=alice["access_token"]), 400, "M_INVALID_PARAM")
        self.assertMatrixError(await self.request("POST", f"{V3}/keys/upload",
                                                  {"one_time_keys": {"nocolon": "x"}},
                                                  token=alice["access_token"]), 400, "M_INVALID_PARAM")
        # Nothing of it was stored.
        query = await self.ok("POST", "/keys/query", {"device_keys": {alice["user_id"]: []}}, who=bob)
        self.assertEqual(query["device_keys"][alice["user_id"]], {})
        self.assertMatrixError(await self.request("POST", f"{V3}/keys/upload", {}), 401, "M_MISSING_TOKEN")

    @inline
    async def test_one_time_key_ids_are_not_reused(self):
        alice = await self.user("alice")
        keys = {"signed_curve25519:AAAA": self.otk(alice, "k1")}
        await self.upload(alice, one_time_keys=keys)
        # The same key again is fine (a retried upload) ...
        self.assertEqual((await self.upload(alice, one_time_keys=keys))["one_time_key_counts"],
                         {"signed_curve25519": 1})
        # ... another key under the same ID is not, and nothing of that request is kept.
        self.assertMatrixError(await self.request(
            "POST", f"{V3}/keys/upload",
            {"one_time_keys": {"signed_curve25519:AAAB": self.otk(alice, "k2"),
                               "signed_curve25519:AAAA": self.otk(alice, "other")}},
            token=alice["access_token"]), 400, "M_INVALID_PARAM")
        self.assertEqual((await self.upload(alice))["one_time_key_counts"], {"signed_curve25519": 1})

    # -- send-to-device -----------------------------------------------------------------

    @inline
    async def test_to_device_delivered_once_and_idempotent(self):
        alice, bob = await self.user("alice"), await self.user("bob")
        initial = await self.sync(bob)
        self.assertEqual(initial["to_device"]["events"], [])
        body = {"messages": {bob["user_id"]: {bob["device_id"]: {"hello": "bob"}}}}
        for _ in range(2):  # the retry of the same transaction sends nothing more
            await self.ok("PUT", "/sendToDevice/m.test/txn1", body, who=alice)
        got = await self.sync(bob, initial["next_batch"])
        self.assertEqual(got["to_device"]["events"],
                         [{"sender": alice["user_id"], "type": "m.test", "content": {"hello": "bob"}}])
        # Not delivered again; and once acknowledged (a later since), gone from storage.
        again = await self.sync(bob, got["next_batch"])
        self.assertEqual(again["to_device"]["events"], [])
        self.assertEqual(await self.hs.to_device._store.pending_count(bob["user_id"], bob["device_id"]), 0)
        # A new transaction ID is a new message; a retry of the old one still is not.
        await self.ok("PUT", "/sendToDevice/m.test/txn2", body, who=alice)
        await self.ok("PUT", "/sendToDevice/m.test/txn1", body, who=alice)
        later = await self.sync(bob, again["next_batch"])
        self.assertEqual(len(later["to_device"]["events"]), 1)
        # Replaying an older since does not bring back what a later one acknowledged.
        replay = await self.sync(bob, initial["next_batch"])
        self.assertEqual(len(replay["to_device"]["events"]), 1)

    @inline
    async def test_to_device_star_reaches_every_device(self):
        alice, bob = await self.user("alice"), await self.user("bob")
        bob2 = await self.second_device("bob")
        unknown = "@nobody:test.local"
        await self.ok("PUT", "/sendToDevice/m.room_key_request/t1",
                      {"messages": {bob["user_id"]: {"*": {"n": 1}}, unknown: {"*": {"n": 2}},
                                    "@carol:elsewhere.example": {"X": {"n": 3}}}}, who=alice)
        for device in (bob, bob2):
            events = (await self.sync(device))["to_device"]["events"]
            self.assertEqual(events, [{"sender": alice["user_id"], "type": "m.room_key_request",
                                       "content": {"n": 1}}])
        # A message to a device that does not exist goes nowhere.
        await self.ok("PUT", "/sendToDevice/m.test/t2", {"messages": {bob["user_id"]: {"GHOST": {}}}}, who=alice)
        self.assertEqual(await self.hs.to_device._store.pending_count(bob["user_id"], "GHOST"), 0)
        self.assertMatrixError(await self.request("PUT", f"{V3}/sendToDevice/m.test/t3",
                                                  {"messages": {bob["user_id"]: ["x"]}},
                                                  token=alice["access_token"]), 400, "M_INVALID_PARAM")

    @inline
    async def test_to_device_wakes_a_long_poll(self):
        alice, bob = await self.user("alice"), await self.user("bob")
        since = (await self.sync(bob))["next_batch"]
        waiting = defer.ensureDeferred(self.sync(bob, since, timeout=20000))
        await self.ok("PUT", "/sendToDevice/m.test/t1",
                      {"messages": {bob["user_id"]: {bob["device_id"]: {"wake": True}}}}, who=alice)
        result = await waiting
        self.assertEqual([e["content"] for e in result["to_device"]["events"]], [{"wake": True}])

    @inline
    async def test_positions_survive_a_restart(self):
        alice, bob = await self.user("alice"), await self.user("bob")
        await self.shared_room(alice, bob)
        initial = await self.sync(bob)
        await self.upload(alice, device_keys=self.device_keys(alice))
        await self.ok("PUT", "/sendToDevice/m.test/t1",
                      {"messages": {bob["user_id"]: {bob["device_id"]: {"n": 1}}}}, who=alice)
        got = await self.sync(bob, initial["next_batch"])
        self.assertEqual(len(got["to_device"]["events"]), 1)
        await self.ok("PUT", "/sendToDevice/m.test/t2",
                      {"messages": {bob["user_id"]: {bob["device_id"]: {"n": 2}}}}, who=alice)
        before = StreamToken.parse(got["next_batch"])
        self.assertGreater(before.to_device, 0)
        self.assertGreater(before.device_lists, 0)

        await self.restart()
        after_restart = await self.sync(bob, got["next_batch"], timeout=10000)
        after = StreamToken.parse(after_restart["next_batch"])
        self.assertGreaterEqual(after.to_device, before.to_device)
        self.assertGreaterEqual(after.device_lists, before.device_lists)
        # The message sent after the last sync comes exactly once.
        self.assertEqual([e["content"] for e in after_restart["to_device"]["events"]], [{"n": 2}])
        final = await self.sync(bob, after_restart["next_batch"])
        self.assertEqual(final["to_device"]["events"], [])

        # A first sync after a restart that does not wait (timeout 0) may answer before the
        # positions are loaded; even then nothing is lost and nothing comes twice.
        await self.ok("PUT", "/sendToDevice/m.test/t3",
                      {"messages": {bob["user_id"]: {bob["device_id"]: {"n": 3}}}}, who=alice)
        await self.restart()
        since, seen = final["next_batch"], []
        for _ in range(3):
            answer = await self.sync(bob, since)
            seen += [e["content"] for e in answer["to_device"]["events"]]
            since = answer["next_batch"]
        self.assertEqual(seen, [{"n": 3}])

    # -- device lists -------------------------------------------------------------------

    @inline
    async def test_device_list_changes_in_sync_and_keys_changes(self):
        alice, bob, carol = await self.user("alice"), await self.user("bob"), await self.user("carol")
        await self.shared_room(alice, bob)
        bob_first = (await self.sync(bob))["next_batch"]
        carol_first = (await self.sync(carol))["next_batch"]
        alice_first = (await self.sync(alice))["next_batch"]

        waiting = defer.ensureDeferred(self.sync(bob, bob_first, timeout=20000))
        await self.upload(alice, device_keys=self.device_keys(alice))
        bob_second = await waiting
        # The long-poll may wake first for something else (alice's presence); the change
        # arrives in one of the next syncs, and only once.
        changed, since = list(bob_second["device_lists"]["changed"]), bob_second["next_batch"]
        for _ in range(5):
            if changed:
                break
            later = await self.sync(bob, since, timeout=5000)
            changed += later["device_lists"]["changed"]
            since = later["next_batch"]
        self.assertEqual(changed, [alice["user_id"]])
        # Alice hears of her own change; carol shares no room with her and does not.
        self.assertIn(alice["user_id"], (await self.sync(alice, alice_first))["device_lists"]["changed"])
        carol_second = await self.sync(carol, carol_first)
        self.assertEqual(carol_second["device_lists"]["changed"], [])

        changes = await self.ok("GET", "/keys/changes", who=bob, query={"from": bob_first, "to": since})
        self.assertEqual(changes["changed"], [alice["user_id"]])
        self.assertEqual(changes["left"], [])
        # The same upload again is no change.
        await self.upload(alice, device_keys=self.device_keys(alice))
        third = await self.sync(bob, since)
        self.assertEqual(third["device_lists"]["changed"], [])
        empty = await self.ok("GET", "/keys/changes", who=bob, query={"from": since, "to": third["next_batch"]})
        self.assertEqual(empty, {"changed": [], "left": []})
        self.assertMatrixError(await self.request("GET", f"{V3}/keys/changes", token=bob["access_token"],
                                                  query={"from": "garbage"}), 400, "M_INVALID_PARAM")

    @inline
    async def test_joins_and_leaves_show_in_device_lists(self):
        alice, bob = await self.user("alice"), await self.user("bob")
        room_id = await self.shared_room(alice)
        since = (await self.sync(alice))["next_batch"]
        await self.ok("POST", f"/join/{q(room_id)}", {}, who=bob)
        joined = await self.sync(alice, since)
        self.assertIn(bob["user_id"], joined["device_lists"]["changed"])
        await self.ok("POST", f"/rooms/{q(room_id)}/leave", {}, who=bob)
        left = await self.sync(alice, joined["next_batch"])
        self.assertEqual(left["device_lists"]["left"], [bob["user_id"]])
        self.assertNotIn(bob["user_id"], left["device_lists"]["changed"])
        changes = await self.ok("GET", "/keys/changes", who=alice, query={"from": since})
        self.assertEqual(changes["left"], [bob["user_id"]])

    @inline
    async def test_deleted_device_keys_go(self):
        alice, bob = await self.user("alice"), await self.user("bob")
        await self.shared_room(alice, bob)
        await self.upload(alice, device_keys=self.device_keys(alice),
                          one_time_keys={"signed_curve25519:AAAA": self.otk(alice, "k1")})
        since = (await self.sync(bob))["next_batch"]
        await self.hs.e2e_keys.delete_device_keys(alice["user_id"], [alice["device_id"]])
        self.assertEqual((await self.sync(bob, since))["device_lists"]["changed"], [alice["user_id"]])
        query = await self.ok("POST", "/keys/query", {"device_keys": {alice["user_id"]: []}}, who=bob)
        self.assertEqual(query["device_keys"][alice["user_id"]], {})
        claim = await self.ok("POST", "/keys/claim", {"one_time_keys": {
            alice["user_id"]: {alice["device_id"]: "signed_curve25519"}}}, who=bob)
        self.assertEqual(claim["one_time_keys"], {})

    # -- cross-signing ------------------------------------------------------------------

    @inline
    async def test_cross_signing_upload_needs_uia_after_the_first(self):
        alice, bob = await self.user("alice"), await self.user("bob")
        # The first upload needs no password (MSC3967) ...
        status, body, keys = await self.cross_signing(alice)
        self.assertEqual(status, 200, body)
        # ... and repeating it exactly neither (a retried request).
        status, body = await self.request("POST", f"{V3}/keys/device_signing/upload", keys["body"],
                                          token=alice["access_token"])
        self.assertEqual(status, 200, body)
        # Replacing the keys asks for the password.
        status, body, _ = await self.cross_signing(alice)
        self.assertEqual(status, 401, body)
        self.assertEqual(body["flows"], [{"stages": ["m.login.password"]}])
        session = body["session"]
        status, body, _ = await self.cross_signing(alice, {
            "type": "m.login.password", "session": session, "password": "wrong password",
            "identifier": {"type": "m.id.user", "user": alice["user_id"]}})
        self.assertEqual(status, 401, body)
        self.assertEqual(body.get("errcode"), "M_FORBIDDEN")
        status, body, keys = await self.cross_signing(alice, {
            "type": "m.login.password", "session": session, "password": PASSWORD,
            "identifier": {"type": "m.id.user", "user": alice["user_id"]}})
        self.assertEqual(status, 200, body)

        master_id = f"ed25519:{public_key(keys['master'])}"
        for who, sees_user_signing in ((alice, True), (bob, False)):
            query = await self.ok("POST", "/keys/query", {"device_keys": {alice["user_id"]: []}}, who=who)
            self.assertEqual(query["master_keys"][alice["user_id"]]["keys"],
                             {master_id: public_key(keys["master"])})
            self.assertEqual(query["self_signing_keys"][alice["user_id"]], keys["body"]["self_signing_key"])
            self.assertEqual(alice["user_id"] in query["user_signing_keys"], sees_user_signing)

    @inline
    async def test_cross_signing_keys_must_be_signed_by_the_master_key(self):
        alice = await self.user("alice")
        status, body, keys = await self.cross_signing(alice)
        self.assertEqual(status, 200, body)
        impostor = cross_signing_key()
        forged = {"user_id": alice["user_id"], "usage": ["self_signing"],
                  "keys": {f"ed25519:{public_key(impostor)}": public_key(impostor)}}
        forged = sign_json(forged, alice["user_id"], impostor)  # signed, but not by the master key
        auth = {"type": "m.login.password", "password": PASSWORD,
                "identifier": {"type": "m.id.user", "user": alice["user_id"]}}
        self.assertMatrixError(await self.request("POST", f"{V3}/keys/device_signing/upload",
                                                  {"self_signing_key": forged, "auth": auth},
                                                  token=alice["access_token"]), 400, "M_INVALID_SIGNATURE")
        # A self-signing key without any master key.
        bob = await self.user("bob")
        lone = {"user_id": bob["user_id"], "usage": ["self_signing"],
                "keys": {f"ed25519:{public_key(impostor)}": public_key(impostor)}}
        self.assertMatrixError(await self.request("POST", f"{V3}/keys/device_signing/upload",
                                                  {"self_signing_key": lone}, token=bob["access_token"]),
                               400, "M_MISSING_PARAM")
        # Keys of someone else.
        self.assertMatrixError(await self.request("POST", f"{V3}/keys/device_signing/upload",
                                                  {"master_key": keys["body"]["master_key"]},
                                                  token=bob["access_token"]), 400, "M_INVALID_PARAM")

    @inline
    async def test_signatures_upload_appear_in_query(self):
        alice, bob, carol = await self.user("alice"), await self.user("bob"), await self.user("carol")
        await self.upload(alice, device_keys=self.device_keys(alice))
        _, _, alice_keys = await self.cross_signing(alice)
        _, _, bob_keys = await self.cross_signing(bob)
        alice_ssk_id = f"ed25519:{public_key(alice_keys['self_signing'])}"
        alice_master = public_key(alice_keys["master"])
        bob_usk_id = f"ed25519:{public_key(bob_keys['user_signing'])}"

        # Alice signs her device with her self-signing key, and her master key with her device.
        signed_device = sign_json(self.device_keys(alice), alice["user_id"], alice_keys["self_signing"])
        signed_master = sign_json(dict(alice_keys["body"]["master_key"]), alice["user_id"], alice["signing_key"])
        answer = await self.ok("POST", "/keys/signatures/upload", {alice["user_id"]: {
            alice["device_id"]: signed_device, alice_master: signed_master}}, who=alice)
        self.assertEqual(answer["failures"], {})
        # Bob signs Alice's master key with his user-signing key.
        bob_signed = sign_json(dict(alice_keys["body"]["master_key"]), bob["user_id"], bob_keys["user_signing"])
        answer = await self.ok("POST", "/keys/signatures/upload",
                               {alice["user_id"]: {alice_master: bob_signed}}, who=bob)
        self.assertEqual(answer["failures"], {})

        for who in (alice, bob, carol):
            query = await self.ok("POST", "/keys/query", {"device_keys": {alice["user_id"]: []}}, who=who)
            device = query["device_keys"][alice["user_id"]][alice["device_id"]]
            self.assertIn(alice_ssk_id, device["signatures"][alice["user_id"]])
            self.assertIn(f"ed25519:{alice['device_id']}", device["signatures"][alice["user_id"]])
            master_signatures = query["master_keys"][alice["user_id"]]["signatures"]
            self.assertIn(f"ed25519:{alice['device_id']}", master_signatures[alice["user_id"]])
            # Bob's signature is his own business.
            self.assertEqual(bob["user_id"] in master_signatures, who is bob)
            if who is bob:
                self.assertEqual(list(master_signatures[bob["user_id"]]), [bob_usk_id])

        # A bad signature, an unknown key and a remote user are failures, not errors.
        tampered = dict(signed_device, algorithms=["something.else"])
        answer = await self.ok("POST", "/keys/signatures/upload", {
            alice["user_id"]: {alice["device_id"]: tampered, "NODEVICE": signed_device},
            "@dave:elsewhere.example": {"KEY": {}}}, who=alice)
        self.assertEqual(answer["failures"][alice["user_id"]][alice["device_id"]]["errcode"], "M_INVALID_PARAM")
        self.assertEqual(answer["failures"][alice["user_id"]]["NODEVICE"]["errcode"], "M_NOT_FOUND")
        self.assertIn("KEY", answer["failures"]["@dave:elsewhere.example"])
        forged = sign_json(self.device_keys(alice), alice["user_id"], cross_signing_key())
        forged["signatures"][alice["user_id"]][alice_ssk_id] = \
            forged["signatures"][alice["user_id"]].popitem()[1]
        answer = await self.ok("POST", "/keys/signatures/upload", {alice["user_id"]: {alice["device_id"]: forged}},
                               who=alice)
        self.assertEqual(answer["failures"][alice["user_id"]][alice["device_id"]]["errcode"],
                         "M_INVALID_SIGNATURE")

    # -- key backup ---------------------------------------------------------------------

    @inline
    async def test_no_key_backup(self):
        alice = await self.user("alice")
        for method, path in (("GET", "/room_keys/version"), ("GET", "/room_keys/version/1"),
                             ("POST", "/room_keys/version"), ("GET", "/room_keys/keys"),
                             ("PUT", "/room_keys/keys/!r:test.local/s1")):
            body = {} if method in ("POST", "PUT") else None
            self.assertMatrixError(await self.request(method, f"{V3}{path}", body, token=alice["access_token"]),
                                   404, "M_NOT_FOUND")

    @inline
    async def test_sync_always_carries_the_sections(self):
        alice = await self.user("alice")
        body = await self.sync(alice)
        self.assertEqual(body["device_one_time_keys_count"], {"signed_curve25519": 0})
        self.assertEqual(body["device_unused_fallback_key_types"], [])
        self.assertEqual(body["device_lists"], {"changed": [], "left": []})
        self.assertEqual(body["to_device"], {"events": []})
        json.dumps(body)


class E2ESqliteTests(E2ETests, E2ETestCase):
    engine = "sqlite"


class E2EPostgresTests(E2ETests, E2ETestCase):
    engine = "postgres"
