"""Queries between homeservers, through the client APIs of two in-process peers over
real federation: profiles, aliases, end-to-end keys and device lists, media, the public
room directory and the space hierarchy; and signed-only access to the query endpoints."""

from __future__ import annotations

import io
import json
import os
from urllib.parse import quote

import treq
from signedjson.key import (decode_signing_key_base64, encode_signing_key_base64, encode_verify_key_base64,
                            generate_signing_key, get_verify_key)
from signedjson.sign import sign_json
from twisted.internet import reactor, ssl
from twisted.web.client import Agent, HTTPConnectionPool
from twisted.web.iweb import IPolicyForHTTPS
from zope.interface import implementer

from federation.client import FederationHttpError
from homeserver.media import multipart
from tests.support.federation import TwoServerTestCase, path_id
from tests.support.server import inline

V3 = "/_matrix/client/v3"
PASSWORD = "correct horse battery"


def _cross_signing_key():
    """A fresh ed25519 key whose key ID is its own public key, as cross-signing keys are."""
    key = generate_signing_key("tmp")
    public = encode_verify_key_base64(get_verify_key(key))
    return public, decode_signing_key_base64("ed25519", public, encode_signing_key_base64(key))


def _png(width: int, height: int) -> bytes:
    from PIL import Image
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 90)).save(out, "PNG")
    return out.getvalue()


@implementer(IPolicyForHTTPS)
class _TrustAnything:
    def creatorForNetloc(self, hostname, port):
        return ssl.CertificateOptions(verify=False)


class FederationQueryTests(TwoServerTestCase):
    async def shared_room(self) -> str:
        """A public room on A that bob (of B) has joined, seen joined on A."""
        room_id = await self.a.create_room(self.alice, preset="public_chat")
        status, body = await self.b.join(self.bob, room_id, via=[self.a.server_name])
        self.assertEqual(status, 200, body)

        async def joined_on_a():
            state = await self.a.state(self.alice, room_id)
            return any(e["type"] == "m.room.member" and e["state_key"] == self.bob_id
                       and e["content"].get("membership") == "join" for e in state)
        await self.a.wait_for(joined_on_a, what="bob's join")
        return room_id

    # -- profiles and aliases -----------------------------------------------------------

    @inline
    async def test_remote_profile(self):
        await self.ok(self.a, "PUT", f"{V3}/profile/{path_id(self.alice_id)}/displayname",
                      {"displayname": "Alice A."}, token=self.alice)
        profile = await self.ok(self.b, "GET", f"{V3}/profile/{path_id(self.alice_id)}", token=self.bob)
        self.assertEqual(profile, {"displayname": "Alice A."})
        field = await self.ok(self.b, "GET", f"{V3}/profile/{path_id(self.alice_id)}/displayname", token=self.bob)
        self.assertEqual(field, {"displayname": "Alice A."})
        status, body = await self.b.request("GET", f"{V3}/profile/{path_id(self.a.user_id('nobody'))}",
                                            token=self.bob)
        self.assertEqual((status, body["errcode"]), (404, "M_NOT_FOUND"))

    @inline
    async def test_remote_alias_lookup_and_join(self):
        room_id = await self.a.create_room(self.alice, preset="public_chat")
        alias = f"#lobby:{self.a.server_name}"
        await self.ok(self.a, "PUT", f"{V3}/directory/room/{path_id(alias)}", {"room_id": room_id}, token=self.alice)

        found = await self.ok(self.b, "GET", f"{V3}/directory/room/{path_id(alias)}", token=self.bob)
        self.assertEqual(found["room_id"], room_id)
        self.assertEqual(found["servers"][0], self.a.server_name)

        status, body = await self.b.request("GET", f"{V3}/directory/room/{path_id('#nope:' + self.a.server_name)}",
                                            token=self.bob)
        self.assertEqual((status, body["errcode"]), (404, "M_NOT_FOUND"))

        status, body = await self.b.request("POST", f"{V3}/join/{path_id(alias)}", {}, token=self.bob)
        self.assertEqual((status, body.get("room_id")), (200, room_id), body)
        # Now both servers are in the room: the alias answers both, A first.
        found = await self.ok(self.b, "GET", f"{V3}/directory/room/{path_id(alias)}", token=self.bob)
        self.assertEqual(found["servers"], [self.a.server_name, self.b.server_name])

    # -- keys and device lists ------------------------------------------------------------

    async def upload_device_keys(self, peer, token: str, user_id: str, one_time: int = 0) -> tuple[str, dict]:
        whoami = await self.ok(peer, "GET", f"{V3}/account/whoami", token=token)
        device_id = whoami["device_id"]
        signing_key = generate_signing_key(device_id)
        keys = sign_json({
            "user_id": user_id, "device_id": device_id,
            "algorithms": ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
            "keys": {f"curve25519:{device_id}": "curve-" + device_id,
                     f"ed25519:{device_id}": encode_verify_key_base64(get_verify_key(signing_key))},
        }, user_id, signing_key)
        otks = {f"signed_curve25519:k{i}": sign_json({"key": f"otk{i}"}, user_id, signing_key)
                for i in range(one_time)}
        await self.ok(peer, "POST", f"{V3}/keys/upload", {"device_keys": keys, "one_time_keys": otks}, token=token)
        return device_id, keys

    @inline
    async def test_keys_query_and_claim_of_a_remote_user(self):
        device_id, keys = await self.upload_device_keys(self.b, self.bob, self.bob_id, one_time=2)

        answer = await self.ok(self.a, "POST", f"{V3}/keys/query",
                               {"device_keys": {self.bob_id: [], self.alice_id: []}}, token=self.alice)
        self.assertEqual(answer["failures"], {})
        remote = answer["device_keys"][self.bob_id][device_id]
        self.assertEqual(remote["keys"], keys["keys"])
        self.assertEqual(remote["signatures"], keys["signatures"])
        self.assertIn(self.alice_id, answer["device_keys"])

        claimed = set()
        for _ in range(2):
            answer = await self.ok(self.a, "POST", f"{V3}/keys/claim",
                                   {"one_time_keys": {self.bob_id: {device_id: "signed_curve25519"}}},
                                   token=self.alice)
            self.assertEqual(answer["failures"], {})
            (key_id, key), = answer["one_time_keys"][self.bob_id][device_id].items()
            claimed.add(key_id)
        self.assertEqual(claimed, {"signed_curve25519:k0", "signed_curve25519:k1"})

        # A server that cannot be reached is a failure; the others still answer.
        answer = await self.ok(self.a, "POST", f"{V3}/keys/query",
                               {"device_keys": {self.bob_id: [], "@x:127.0.0.1:1": []}, "timeout": 5000},
                               token=self.alice)
        self.assertIn("127.0.0.1:1", answer["failures"])
        self.assertIn(device_id, answer["device_keys"][self.bob_id])

        # The devices endpoint, as a server caching device lists would call it.
        devices = await self.a.hs.federation_client.get_json(
            self.b.server_name, f"/_matrix/federation/v1/user/devices/{path_id(self.bob_id)}")
        self.assertEqual(devices["user_id"], self.bob_id)
        self.assertGreater(devices["stream_id"], 0)
        self.assertEqual([d["device_id"] for d in devices["devices"]], [device_id])
        self.assertEqual(devices["devices"][0]["keys"]["keys"], keys["keys"])

    @inline
    async def test_device_list_change_reaches_the_other_server(self):
        room_id = await self.shared_room()
        status, first = await self.a.request("GET", f"{V3}/sync?timeout=0", token=self.alice)
        self.assertEqual(status, 200, first)
        since = first["next_batch"]
        status, quiet = await self.a.request("GET", f"{V3}/sync?timeout=0&since={quote(since)}", token=self.alice)
        self.assertNotIn(self.bob_id, quiet.get("device_lists", {}).get("changed", []))

        device_id, _ = await self.upload_device_keys(self.b, self.bob, self.bob_id)

        async def changed():
            status, body = await self.a.request("GET", f"{V3}/sync?timeout=0&since={quote(since)}",
                                                token=self.alice)
            return status == 200 and self.bob_id in body.get("device_lists", {}).get("changed", [])
        await self.a.wait_for(changed, what="bob in alice's device_lists.changed")

        # Queried again, the new device keys are there (fetched from B).
        answer = await self.ok(self.a, "POST", f"{V3}/keys/query", {"device_keys": {self.bob_id: []}},
                               token=self.alice)
        self.assertIn(device_id, answer["device_keys"][self.bob_id])

        # And the other way: alice's keys reach bob's sync.
        status, first = await self.b.request("GET", f"{V3}/sync?timeout=0", token=self.bob)
        since_b = first["next_batch"]
        await self.upload_device_keys(self.a, self.alice, self.alice_id)

        async def changed_on_b():
            status, body = await self.b.request("GET", f"{V3}/sync?timeout=0&since={quote(since_b)}",
                                                token=self.bob)
            return status == 200 and self.alice_id in body.get("device_lists", {}).get("changed", [])
        await self.b.wait_for(changed_on_b, what="alice in bob's device_lists.changed")
        self.assertTrue(room_id)

    @inline
    async def test_cross_signing_and_deleted_devices_reach_the_other_server(self):
        await self.shared_room()
        status, login = await self.b.request("POST", f"{V3}/login", {
            "type": "m.login.password", "identifier": {"type": "m.id.user", "user": "bob"}, "password": PASSWORD})
        self.assertEqual(status, 200, login)
        second = login["access_token"]
        first_device, _ = await self.upload_device_keys(self.b, self.bob, self.bob_id)
        second_device, _ = await self.upload_device_keys(self.b, second, self.bob_id)

        async def bob_changed_since(since: str) -> bool:
            status, body = await self.a.request("GET", f"{V3}/sync?timeout=0&since={quote(since)}",
                                                token=self.alice)
            return status == 200 and self.bob_id in body.get("device_lists", {}).get("changed", [])

        async def next_batch() -> str:
            return (await self.ok(self.a, "GET", f"{V3}/sync?timeout=0", token=self.alice))["next_batch"]

        # Cross-signing keys: an m.signing_key_update.
        since = await next_batch()
        master_public, master = _cross_signing_key()
        self_public, self_signing = _cross_signing_key()
        master_key = {"user_id": self.bob_id, "usage": ["master"], "keys": {f"ed25519:{master_public}": master_public}}
        self_signing_key = sign_json({"user_id": self.bob_id, "usage": ["self_signing"],
                                      "keys": {f"ed25519:{self_public}": self_public}}, self.bob_id, master)
        await self.ok(self.b, "POST", f"{V3}/keys/device_signing/upload",
                      {"master_key": master_key, "self_signing_key": self_signing_key}, token=self.bob)
        await self.a.wait_for(lambda: bob_changed_since(since), what="bob's cross-signing change on A")
        answer = await self.ok(self.a, "POST", f"{V3}/keys/query", {"device_keys": {self.bob_id: []}},
                               token=self.alice)
        self.assertEqual(answer["master_keys"][self.bob_id]["keys"], master_key["keys"])
        self.assertEqual(answer["self_signing_keys"][self.bob_id]["keys"], self_signing_key["keys"])
        self.assertNotIn(self.bob_id, answer["user_signing_keys"])

        # A device logging out: a deleted device.
        since = await next_batch()
        status, body = await self.b.request("POST", f"{V3}/logout", {}, token=second)
        self.assertEqual(status, 200, body)
        await self.a.wait_for(lambda: bob_changed_since(since), what="bob's logout on A")
        answer = await self.ok(self.a, "POST", f"{V3}/keys/query", {"device_keys": {self.bob_id: []}},
                               token=self.alice)
        self.assertEqual(set(answer["device_keys"][self.bob_id]), {first_device})
        self.assertNotEqual(first_device, second_device)

    # -- media ----------------------------------------------------------------------------

    @inline
    async def test_remote_thumbnail(self):
        status, body = await self.a.request("POST", "/_matrix/media/v3/upload?filename=pic.png", token=self.alice,
                                            raw=_png(640, 480), headers={"Content-Type": "image/png"})
        self.assertEqual(status, 200, body)
        server_name, media_id = body["content_uri"][len("mxc://"):].split("/", 1)
        path = (f"/_matrix/client/v1/media/thumbnail/{quote(server_name, safe='')}/{media_id}"
                "?width=64&height=64&method=scale")
        status, got = await self.b.request("GET", path, token=self.bob)
        self.assertEqual(status, 200, got)
        self.assertEqual(self.b.client.last_headers.getRawHeaders(b"Content-Type"), [b"image/png"])
        from PIL import Image
        self.assertLess(max(Image.open(io.BytesIO(got)).size), 640)  # made on A, smaller than the original

    @inline
    async def test_remote_media_download(self):
        data = os.urandom(200_000)
        status, body = await self.a.request("POST", "/_matrix/media/v3/upload?filename=noise.bin", token=self.alice,
                                            raw=data, headers={"Content-Type": "application/octet-stream"})
        self.assertEqual(status, 200, body)
        server_name, media_id = body["content_uri"][len("mxc://"):].split("/", 1)
        self.assertEqual(server_name, self.a.server_name)

        path = f"/_matrix/client/v1/media/download/{quote(server_name, safe='')}/{media_id}"
        status, got = await self.b.request("GET", path, token=self.bob)
        self.assertEqual(status, 200)
        self.assertEqual(got, data)
        headers = self.b.client.last_headers
        self.assertEqual(headers.getRawHeaders(b"Content-Type"), [b"application/octet-stream"])
        self.assertIn(b"noise.bin", headers.getRawHeaders(b"Content-Disposition")[0])

        # The federation answer itself: multipart/mixed, JSON then the bytes.
        raw_headers, raw = await self.b.hs.federation_client.get_bytes(
            self.a.server_name, f"/_matrix/federation/v1/media/download/{media_id}")
        parts = multipart.parse(raw, raw_headers["content-type"])
        self.assertEqual(json.loads(parts[0][1]), {})
        self.assertEqual(parts[0][0]["content-type"], "application/json")
        self.assertEqual(parts[1][1], data)

        status, body = await self.b.request(
            "GET", f"/_matrix/client/v1/media/download/{quote(server_name, safe='')}/unknownmedia", token=self.bob)
        self.assertEqual((status, body["errcode"]), (404, "M_NOT_FOUND"))

        # B kept a copy: with A gone, the legacy path still serves it.
        await self.a.stop()
        status, got = await self.b.request("GET", f"/_matrix/media/v3/download/{quote(server_name, safe='')}/"
                                                  f"{media_id}")
        self.assertEqual((status, got), (200, data))

    # -- directory ------------------------------------------------------------------------

    @inline
    async def test_public_rooms_of_a_remote_server(self):
        room_id = await self.a.create_room(self.alice, preset="public_chat", visibility="public", name="Lobby")
        await self.a.create_room(self.alice, preset="public_chat", visibility="public", name="Garden")

        server = quote(self.a.server_name, safe="")
        listed = await self.ok(self.b, "GET", f"{V3}/publicRooms?server={server}", token=self.bob)
        self.assertEqual({r["name"] for r in listed["chunk"]}, {"Lobby", "Garden"})
        searched = await self.ok(self.b, "POST", f"{V3}/publicRooms?server={server}",
                                 {"filter": {"generic_search_term": "lobby"}, "limit": 10}, token=self.bob)
        self.assertEqual([r["room_id"] for r in searched["chunk"]], [room_id])

        self.a.hs.config.federation.allow_public_rooms = False
        status, body = await self.b.request("GET", f"{V3}/publicRooms?server={server}", token=self.bob)
        self.assertEqual((status, body["errcode"]), (403, "M_FORBIDDEN"))

    @inline
    async def test_space_hierarchy_over_federation(self):
        space = await self.a.create_room(self.alice, preset="public_chat", name="Space",
                                         creation_content={"type": "m.space"})
        child = await self.a.create_room(self.alice, preset="public_chat", name="Child")
        secret = await self.a.create_room(self.alice, preset="private_chat", name="Secret")
        for room in (child, secret):
            await self.ok(self.a, "PUT", f"{V3}/rooms/{path_id(space)}/state/m.space.child/{path_id(room)}",
                          {"via": [self.a.server_name]}, token=self.alice)
        answer = await self.b.hs.federation_client.get_json(
            self.a.server_name, f"/_matrix/federation/v1/hierarchy/{path_id(space)}")
        self.assertEqual(answer["room"]["room_id"], space)
        self.assertEqual(answer["room"]["room_type"], "m.space")
        self.assertEqual({c["state_key"] for c in answer["room"]["children_state"]}, {child, secret})
        self.assertTrue(all("origin_server_ts" in c for c in answer["room"]["children_state"]))
        self.assertEqual([c["room_id"] for c in answer["children"]], [child])
        self.assertEqual(answer["inaccessible_children"], [secret])
        with self.assertRaises(FederationHttpError) as raised:
            await self.b.hs.federation_client.get_json(
                self.a.server_name, f"/_matrix/federation/v1/hierarchy/{path_id(secret)}")
        self.assertEqual(raised.exception.status, 403)

        # A client of B walks the space: B is in the space only, the rest is asked of A.
        sub_space = await self.a.create_room(self.alice, preset="public_chat", name="Sub",
                                             creation_content={"type": "m.space"})
        grandchild = await self.a.create_room(self.alice, preset="public_chat", name="Grandchild")
        await self.ok(self.a, "PUT", f"{V3}/rooms/{path_id(sub_space)}/state/m.space.child/{path_id(grandchild)}",
                      {"via": [self.a.server_name]}, token=self.alice)
        await self.ok(self.a, "PUT", f"{V3}/rooms/{path_id(space)}/state/m.space.child/{path_id(sub_space)}",
                      {"via": [self.a.server_name], "order": "0"}, token=self.alice)
        status, body = await self.b.join(self.bob, space, via=[self.a.server_name])
        self.assertEqual(status, 200, body)
        walked = await self.ok(self.b, "GET", f"/_matrix/client/v1/rooms/{path_id(space)}/hierarchy", token=self.bob)
        self.assertEqual([r["room_id"] for r in walked["rooms"]], [space, sub_space, grandchild, child])
        by_id = {r["room_id"]: r for r in walked["rooms"]}
        self.assertEqual(by_id[sub_space]["room_type"], "m.space")
        self.assertEqual([c["state_key"] for c in by_id[sub_space]["children_state"]], [grandchild])
        self.assertEqual(by_id[grandchild]["name"], "Grandchild")
        self.assertEqual(by_id[grandchild]["children_state"], [])

    # -- signatures -------------------------------------------------------------------------

    @inline
    async def test_unsigned_query_is_refused(self):
        pool = HTTPConnectionPool(reactor, persistent=False)
        agent = Agent(reactor, contextFactory=_TrustAnything(), pool=pool)
        base = f"https://127.0.0.1:{self.a.hs.federation_port}/_matrix/federation/v1"
        try:
            for path in (f"/query/profile?user_id={quote(self.alice_id)}",
                         f"/query/directory?room_alias={quote('#x:' + self.a.server_name)}",
                         f"/user/devices/{path_id(self.alice_id)}", "/publicRooms"):
                response = await treq.get(base + path, agent=agent)
                body = json.loads(await response.content())
                self.assertEqual((response.code, body["errcode"]), (401, "M_UNAUTHORIZED"), path)
            response = await treq.post(base + "/user/keys/query", json.dumps({"device_keys": {}}).encode(),
                                       agent=agent)
            await response.content()
            self.assertEqual(response.code, 401)
        finally:
            await pool.closeCachedConnections()


class FederationQueryPostgresTests(FederationQueryTests):
    engine = "postgres"
