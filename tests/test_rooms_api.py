"""Rooms over the client-server API, on both engines: creation, membership, sending,
state, redaction, reads, aliases; every refusal is M_FORBIDDEN and persists nothing."""

from __future__ import annotations

import base64
import hashlib
import json
from urllib.parse import quote

from canonicaljson import encode_canonical_json
from signedjson.key import decode_verify_key_bytes
from signedjson.sign import verify_signed_json
from twisted.trial import unittest

from tests.support.server import HomeserverTestCase, inline

V3 = "/_matrix/client/v3"


def q(value: str) -> str:
    return quote(value, safe="")


def unpadded_b64decode(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


class RoomTestCase(HomeserverTestCase):
    async def setup_users(self, *names: str) -> dict[str, str]:
        tokens = {}
        for name in names:
            tokens[name] = (await self.register(name))["access_token"]
        return tokens

    async def create_room(self, token: str, **body) -> str:
        status, answer = await self.request("POST", f"{V3}/createRoom", body, token=token)
        self.assertEqual(status, 200, answer)
        return answer["room_id"]

    async def send(self, token: str, room_id: str, body: str = "hello", txn: str | None = None,
                   event_type: str = "m.room.message"):
        self._txn = getattr(self, "_txn", 0) + 1
        return await self.request("PUT", f"{V3}/rooms/{q(room_id)}/send/{event_type}/{txn or self._txn}",
                                  {"msgtype": "m.text", "body": body}, token=token)

    async def state(self, token: str, room_id: str) -> dict:
        status, events = await self.request("GET", f"{V3}/rooms/{q(room_id)}/state", token=token)
        self.assertEqual(status, 200, events)
        return {(e["type"], e["state_key"]): e for e in events}

    async def event_count(self) -> int:
        return await self.hs.db.run_interaction("count", lambda txn: txn.select_one("SELECT COUNT(*) FROM events")[0])

    async def assertRefusedAndNothingStored(self, call, status=403, errcode="M_FORBIDDEN"):
        before = await self.event_count()
        result = await call
        self.assertMatrixError(result, status, errcode)
        self.assertEqual(await self.event_count(), before, "a refused request persisted an event")


class RoomCreationTests:
    @inline
    async def test_create_room_with_everything(self):
        tokens = await self.setup_users("alice", "bob")
        room_id = await self.create_room(
            tokens["alice"], name="Lobby", topic="Say hi", preset="public_chat", room_alias_name="lobby",
            invite=["@bob:test.local"], initial_state=[{"type": "m.room.avatar", "content": {"url": "mxc://x/y"}}],
            power_level_content_override={"events_default": 10}, visibility="public")
        state = await self.state(tokens["alice"], room_id)
        self.assertEqual(state[("m.room.name", "")]["content"], {"name": "Lobby"})
        self.assertEqual(state[("m.room.topic", "")]["content"], {"topic": "Say hi"})
        self.assertEqual(state[("m.room.join_rules", "")]["content"], {"join_rule": "public"})
        self.assertEqual(state[("m.room.history_visibility", "")]["content"], {"history_visibility": "shared"})
        self.assertEqual(state[("m.room.guest_access", "")]["content"], {"guest_access": "forbidden"})
        self.assertEqual(state[("m.room.canonical_alias", "")]["content"], {"alias": "#lobby:test.local"})
        self.assertEqual(state[("m.room.avatar", "")]["content"], {"url": "mxc://x/y"})
        power = state[("m.room.power_levels", "")]["content"]
        self.assertEqual(power["users"], {"@alice:test.local": 100})
        self.assertEqual(power["events_default"], 10)
        self.assertEqual(state[("m.room.member", "@bob:test.local")]["content"]["membership"], "invite")
        self.assertEqual(state[("m.room.create", "")]["content"]["room_version"], self.hs.config.rooms.default_version)
        status, alias = await self.request("GET", f"{V3}/directory/room/{q('#lobby:test.local')}")
        self.assertEqual(alias, {"room_id": room_id, "servers": ["test.local"]})

    @inline
    async def test_events_are_in_the_specified_order(self):
        tokens = await self.setup_users("alice")
        room_id = await self.create_room(tokens["alice"], name="N", topic="T", room_alias_name="ordered",
                                         initial_state=[{"type": "m.custom", "content": {}}])
        rows = await self.hs.db.run_interaction("order", lambda txn: txn.select_all(
            "SELECT type FROM events WHERE room_id = ? ORDER BY stream_ordering", (room_id,)))
        self.assertEqual([r[0] for r in rows], [
            "m.room.create", "m.room.member", "m.room.power_levels", "m.room.canonical_alias",
            "m.room.join_rules", "m.room.history_visibility", "m.room.guest_access", "m.custom",
            "m.room.name", "m.room.topic"])

    @inline
    async def test_private_and_trusted_presets(self):
        tokens = await self.setup_users("alice", "bob")
        private = await self.state(tokens["alice"], await self.create_room(tokens["alice"], preset="private_chat"))
        self.assertEqual(private[("m.room.join_rules", "")]["content"]["join_rule"], "invite")
        self.assertEqual(private[("m.room.guest_access", "")]["content"]["guest_access"], "can_join")
        trusted_id = await self.create_room(tokens["alice"], preset="trusted_private_chat",
                                            invite=["@bob:test.local"], room_version="11")
        trusted = await self.state(tokens["alice"], trusted_id)
        self.assertEqual(trusted[("m.room.power_levels", "")]["content"]["users"]["@bob:test.local"], 100)

    @inline
    async def test_space_creation_content(self):
        tokens = await self.setup_users("alice")
        room_id = await self.create_room(tokens["alice"], creation_content={"type": "m.space"})
        state = await self.state(tokens["alice"], room_id)
        self.assertEqual(state[("m.room.create", "")]["content"]["type"], "m.space")

    @inline
    async def test_each_room_version(self):
        tokens = await self.setup_users("alice", "bob")
        for version in ("10", "11", "12"):
            room_id = await self.create_room(tokens["alice"], room_version=version, preset="public_chat")
            state = await self.state(tokens["alice"], room_id)
            create = state[("m.room.create", "")]
            self.assertEqual(create["content"]["room_version"], version)
            if version == "10":
                self.assertEqual(create["content"]["creator"], "@alice:test.local")
            else:
                self.assertNotIn("creator", create["content"])
            if version == "12":
                self.assertEqual(room_id, "!" + create["event_id"][1:])
                self.assertNotIn("@alice:test.local", state[("m.room.power_levels", "")]["content"]["users"])
            else:
                self.assertTrue(room_id.endswith(":test.local"))
            status, _ = await self.request("POST", f"{V3}/join/{q(room_id)}", {}, token=tokens["bob"])
            self.assertEqual(status, 200)
            status, sent = await self.send(tokens["bob"], room_id, f"hi in v{version}")
            self.assertEqual(status, 200, sent)

    @inline
    async def test_bad_create_requests(self):
        tokens = await self.setup_users("alice")
        token = tokens["alice"]
        await self.assertRefusedAndNothingStored(
            self.request("POST", f"{V3}/createRoom", {"room_version": "9"}, token=token),
            400, "M_UNSUPPORTED_ROOM_VERSION")
        await self.assertRefusedAndNothingStored(
            self.request("POST", f"{V3}/createRoom", {"preset": "party"}, token=token), 400, "M_INVALID_PARAM")
        await self.assertRefusedAndNothingStored(
            self.request("POST", f"{V3}/createRoom", {"invite": ["bob"]}, token=token), 400, "M_INVALID_PARAM")
        await self.assertRefusedAndNothingStored(
            self.request("POST", f"{V3}/createRoom", {"name": 5}, token=token), 400, "M_INVALID_PARAM")
        await self.assertRefusedAndNothingStored(self.request("POST", f"{V3}/createRoom", {}), 401, "M_MISSING_TOKEN")
        await self.create_room(token, room_alias_name="taken")
        await self.assertRefusedAndNothingStored(
            self.request("POST", f"{V3}/createRoom", {"room_alias_name": "taken"}, token=token), 400, "M_ROOM_IN_USE")


class EventIntegrityTests:
    @inline
    async def test_ids_hashes_and_signatures_check_out_independently(self):
        tokens = await self.setup_users("alice")
        for version in ("10", "11", "12"):
            room_id = await self.create_room(tokens["alice"], room_version=version, name="Signed")
            await self.send(tokens["alice"], room_id, "verify me")
            status, keys = await self.request("GET", "/_matrix/key/v2/server")
            self.assertEqual(status, 200)
            (key_id, key_info), = keys["verify_keys"].items()
            verify_key = decode_verify_key_bytes(key_id, unpadded_b64decode(key_info["key"]))
            verify_signed_json(keys, "test.local", verify_key)
            self.assertGreater(keys["valid_until_ts"], self.hs.clock.time_ms())

            rows = await self.hs.db.run_interaction("pdus", lambda txn: txn.select_all(
                "SELECT event_id, json FROM events WHERE room_id = ?", (room_id,)))
            self.assertGreaterEqual(len(rows), 7)
            for event_id, raw in rows:
                pdu = json.loads(raw)
                self._check_pdu(version, event_id, pdu, verify_key)

    def _check_pdu(self, version: str, event_id: str, pdu: dict, verify_key) -> None:
        # Content hash: everything but unsigned, signatures and hashes.
        hashed = {k: v for k, v in pdu.items() if k not in ("unsigned", "signatures", "hashes")}
        self.assertEqual(base64.b64encode(hashlib.sha256(encode_canonical_json(hashed)).digest()).rstrip(b"=").decode(),
                         pdu["hashes"]["sha256"])
        # Redaction keeps these top-level keys in every version we run (v10's extras are absent here).
        keep = {"event_id", "type", "room_id", "sender", "state_key", "content", "hashes", "signatures", "depth",
                "prev_events", "auth_events", "origin_server_ts"}
        redacted = {k: v for k, v in pdu.items() if k in keep}
        content = pdu["content"]
        kept_content = {
            "m.room.member": ["membership", "join_authorised_via_users_server"],
            "m.room.join_rules": ["join_rule", "allow"],
            "m.room.history_visibility": ["history_visibility"],
            "m.room.power_levels": ["ban", "events", "events_default", "kick", "redact", "state_default", "users",
                                    "users_default"] + (["invite"] if version != "10" else []),
        }
        if pdu["type"] == "m.room.create":
            redacted["content"] = dict(content) if version != "10" else {k: content[k] for k in ("creator",) if k in content}
        else:
            redacted["content"] = {k: content[k] for k in kept_content.get(pdu["type"], []) if k in content}
        signatures = redacted.pop("signatures")
        reference = hashlib.sha256(encode_canonical_json(redacted)).digest()
        self.assertEqual("$" + base64.urlsafe_b64encode(reference).rstrip(b"=").decode(), event_id)
        verify_signed_json({**redacted, "signatures": signatures}, "test.local", verify_key)
        if version == "12":
            self.assertEqual("room_id" in pdu, pdu["type"] != "m.room.create")
            self.assertEqual(pdu["auth_events"].count(pdu.get("room_id", "!")[1:]), 0)


class MembershipTests:
    @inline
    async def test_join_leave_and_rejoin_a_public_room(self):
        tokens = await self.setup_users("alice", "bob")
        room_id = await self.create_room(tokens["alice"], preset="public_chat", room_alias_name="pub")
        status, body = await self.request("POST", f"{V3}/join/{q('#pub:test.local')}", {}, token=tokens["bob"])
        self.assertEqual((status, body), (200, {"room_id": room_id}))
        status, joined = await self.request("GET", f"{V3}/joined_rooms", token=tokens["bob"])
        self.assertEqual(joined["joined_rooms"], [room_id])
        status, members = await self.request("GET", f"{V3}/rooms/{q(room_id)}/joined_members", token=tokens["bob"])
        self.assertEqual(sorted(members["joined"]), ["@alice:test.local", "@bob:test.local"])
        # Joining again changes nothing.
        before = await self.event_count()
        status, _ = await self.request("POST", f"{V3}/rooms/{q(room_id)}/join", {}, token=tokens["bob"])
        self.assertEqual((status, await self.event_count()), (200, before))
        status, _ = await self.request("POST", f"{V3}/rooms/{q(room_id)}/leave", {}, token=tokens["bob"])
        self.assertEqual(status, 200)
        status, joined = await self.request("GET", f"{V3}/joined_rooms", token=tokens["bob"])
        self.assertEqual(joined["joined_rooms"], [])
        status, _ = await self.request("POST", f"{V3}/rooms/{q(room_id)}/forget", {}, token=tokens["bob"])
        self.assertEqual(status, 200)
        status, _ = await self.request("POST", f"{V3}/join/{q(room_id)}", {}, token=tokens["bob"])
        self.assertEqual(status, 200)

    @inline
    async def test_invite_only_room(self):
        tokens = await self.setup_users("alice", "bob", "carol")
        room_id = await self.create_room(tokens["alice"], preset="private_chat")
        await self.assertRefusedAndNothingStored(
            self.request("POST", f"{V3}/join/{q(room_id)}", {}, token=tokens["bob"]))
        # A non-member cannot invite.
        await self.assertRefusedAndNothingStored(self.request(
            "POST", f"{V3}/rooms/{q(room_id)}/invite", {"user_id": "@carol:test.local"}, token=tokens["bob"]))
        status, _ = await self.request("POST", f"{V3}/rooms/{q(room_id)}/invite", {"user_id": "@bob:test.local"},
                                       token=tokens["alice"])
        self.assertEqual(status, 200)
        status, _ = await self.request("POST", f"{V3}/join/{q(room_id)}", {}, token=tokens["bob"])
        self.assertEqual(status, 200)
        members = await self.request("GET", f"{V3}/rooms/{q(room_id)}/members", token=tokens["bob"],
                                     query={"membership": "join"})
        self.assertEqual(sorted(e["state_key"] for e in members[1]["chunk"]),
                         ["@alice:test.local", "@bob:test.local"])

    @inline
    async def test_kick_ban_unban(self):
        tokens = await self.setup_users("alice", "bob", "carol")
        room_id = await self.create_room(tokens["alice"], preset="public_chat")
        for name in ("bob", "carol"):
            await self.request("POST", f"{V3}/join/{q(room_id)}", {}, token=tokens[name])
        # Members without power cannot kick or ban.
        await self.assertRefusedAndNothingStored(self.request(
            "POST", f"{V3}/rooms/{q(room_id)}/kick", {"user_id": "@carol:test.local"}, token=tokens["bob"]))
        await self.assertRefusedAndNothingStored(self.request(
            "POST", f"{V3}/rooms/{q(room_id)}/ban", {"user_id": "@carol:test.local"}, token=tokens["bob"]))
        # Nor act on someone above them.
        await self.assertRefusedAndNothingStored(self.request(
            "POST", f"{V3}/rooms/{q(room_id)}/kick", {"user_id": "@alice:test.local"}, token=tokens["bob"]))
        status, _ = await self.request("POST", f"{V3}/rooms/{q(room_id)}/kick",
                                       {"user_id": "@bob:test.local", "reason": "be nice"}, token=tokens["alice"])
        self.assertEqual(status, 200)
        state = await self.state(tokens["alice"], room_id)
        kicked = state[("m.room.member", "@bob:test.local")]
        self.assertEqual((kicked["content"], kicked["sender"]),
                         ({"membership": "leave", "reason": "be nice"}, "@alice:test.local"))
        status, _ = await self.request("POST", f"{V3}/rooms/{q(room_id)}/ban",
                                       {"user_id": "@bob:test.local", "reason": "spam"}, token=tokens["alice"])
        self.assertEqual(status, 200)
        await self.assertRefusedAndNothingStored(self.request("POST", f"{V3}/join/{q(room_id)}", {},
                                                              token=tokens["bob"]))
        status, _ = await self.request("POST", f"{V3}/rooms/{q(room_id)}/unban",
                                       {"user_id": "@bob:test.local"}, token=tokens["alice"])
        self.assertEqual(status, 200)
        status, _ = await self.request("POST", f"{V3}/join/{q(room_id)}", {}, token=tokens["bob"])
        self.assertEqual(status, 200)

    @inline
    async def test_membership_request_validation(self):
        tokens = await self.setup_users("alice")
        room_id = await self.create_room(tokens["alice"])
        for body in ({}, {"user_id": 5}, {"user_id": "bob"}):
            await self.assertRefusedAndNothingStored(self.request(
                "POST", f"{V3}/rooms/{q(room_id)}/invite", body, token=tokens["alice"]), 400,
                "M_MISSING_PARAM" if not body else "M_INVALID_PARAM")
        await self.assertRefusedAndNothingStored(
            self.request("POST", f"{V3}/join/{q('#nowhere:test.local')}", {}, token=tokens["alice"]),
            404, "M_NOT_FOUND")
        await self.assertRefusedAndNothingStored(
            self.request("POST", f"{V3}/rooms/{q(room_id)}/forget", {}, token=tokens["alice"]), 400, "M_UNKNOWN")


class SendAndStateTests:
    @inline
    async def test_send_is_idempotent_per_device_and_txn_id(self):
        tokens = await self.setup_users("alice")
        room_id = await self.create_room(tokens["alice"])
        first = await self.send(tokens["alice"], room_id, "once", txn="abc")
        again = await self.send(tokens["alice"], room_id, "once", txn="abc")
        self.assertEqual(first, again)
        status, other_device = await self.login("alice")
        other = await self.send(other_device["access_token"], room_id, "once", txn="abc")
        self.assertNotEqual(other[1]["event_id"], first[1]["event_id"])
        rows = await self.hs.db.run_interaction("count", lambda txn: txn.select_one(
            "SELECT COUNT(*) FROM events WHERE room_id = ? AND type = 'm.room.message'", (room_id,))[0])
        self.assertEqual(rows, 2)

    @inline
    async def test_non_member_cannot_send(self):
        tokens = await self.setup_users("alice", "mallory")
        room_id = await self.create_room(tokens["alice"], preset="public_chat")
        await self.assertRefusedAndNothingStored(self.send(tokens["mallory"], room_id, "let me in"))
        await self.assertRefusedAndNothingStored(self.send(tokens["mallory"], "!nowhere:test.local", "x"))

    @inline
    async def test_state_get_and_put_with_power_levels(self):
        tokens = await self.setup_users("alice", "bob")
        room_id = await self.create_room(tokens["alice"], preset="public_chat")
        await self.request("POST", f"{V3}/join/{q(room_id)}", {}, token=tokens["bob"])
        path = f"{V3}/rooms/{q(room_id)}/state/m.room.topic"
        status, put = await self.request("PUT", path, {"topic": "new"}, token=tokens["alice"])
        self.assertEqual(status, 200)
        status, content = await self.request("GET", path, token=tokens["bob"])
        self.assertEqual((status, content), (200, {"topic": "new"}))
        status, full = await self.request("GET", path, token=tokens["bob"], query={"format": "event"})
        self.assertEqual(full["event_id"], put["event_id"])
        # bob (level 0) may not change state that needs 50.
        await self.assertRefusedAndNothingStored(self.request("PUT", path, {"topic": "mine"}, token=tokens["bob"]))
        # Nobody may set a state key naming another user.
        await self.assertRefusedAndNothingStored(self.request(
            "PUT", f"{V3}/rooms/{q(room_id)}/state/m.custom/{q('@alice:test.local')}", {}, token=tokens["bob"]))
        status, _ = await self.request("PUT", f"{V3}/rooms/{q(room_id)}/state/m.custom/{q('@alice:test.local')}",
                                       {"x": 1}, token=tokens["alice"])
        self.assertEqual(status, 200)
        self.assertMatrixError(await self.request("GET", f"{V3}/rooms/{q(room_id)}/state/m.nothing",
                                                  token=tokens["bob"]), 404, "M_NOT_FOUND")

    @inline
    async def test_power_level_changes_follow_the_rules(self):
        tokens = await self.setup_users("alice", "bob")
        room_id = await self.create_room(tokens["alice"], preset="public_chat", room_version="11")
        await self.request("POST", f"{V3}/join/{q(room_id)}", {}, token=tokens["bob"])
        path = f"{V3}/rooms/{q(room_id)}/state/m.room.power_levels"
        status, levels = await self.request("GET", path, token=tokens["alice"])
        levels["users"]["@bob:test.local"] = 50
        levels["state_default"] = 50
        status, _ = await self.request("PUT", path, levels, token=tokens["alice"])
        self.assertEqual(status, 200)
        # bob at 50 may not raise himself, nor demote alice, nor set non-integers.
        for change in ({"users": {**levels["users"], "@bob:test.local": 100}},
                       {"users": {**levels["users"], "@alice:test.local": 0}},
                       {"ban": "50"}):
            await self.assertRefusedAndNothingStored(self.request("PUT", path, {**levels, **change},
                                                                  token=tokens["bob"]))
        # alice may lower herself (self-demotion is allowed).
        status, _ = await self.request("PUT", path, {**levels, "users": {**levels["users"], "@alice:test.local": 60}},
                                       token=tokens["alice"])
        self.assertEqual(status, 200)

    @inline
    async def test_bad_content(self):
        tokens = await self.setup_users("alice")
        room_id = await self.create_room(tokens["alice"])
        send = f"{V3}/rooms/{q(room_id)}/send/m.room.message/"
        await self.assertRefusedAndNothingStored(self.request("PUT", send + "1", raw=b"{oops", token=tokens["alice"]),
                                                 400, "M_NOT_JSON")
        await self.assertRefusedAndNothingStored(self.request("PUT", send + "2", raw=b'{"n": 1.5}',
                                                              token=tokens["alice"]), 400, "M_BAD_JSON")
        await self.assertRefusedAndNothingStored(self.request("PUT", send + "3", {"body": "x" * 66000},
                                                              token=tokens["alice"]), 413, "M_TOO_LARGE")


class RedactionAndReadTests:
    @inline
    async def test_redaction_rules_and_redacted_reads(self):
        tokens = await self.setup_users("alice", "bob", "eve")
        room_id = await self.create_room(tokens["alice"], preset="public_chat")
        await self.request("POST", f"{V3}/join/{q(room_id)}", {}, token=tokens["bob"])
        status, message = await self.send(tokens["bob"], room_id, "oops")
        event_id = message["event_id"]
        status, alice_message = await self.send(tokens["alice"], room_id, "mine")
        # bob may redact his own message but not alice's.
        await self.assertRefusedAndNothingStored(self.request(
            "PUT", f"{V3}/rooms/{q(room_id)}/redact/{q(alice_message['event_id'])}/r1", {}, token=tokens["bob"]))
        status, redaction = await self.request("PUT", f"{V3}/rooms/{q(room_id)}/redact/{q(event_id)}/r2",
                                               {"reason": "typo"}, token=tokens["bob"])
        self.assertEqual(status, 200)
        status, seen = await self.request("GET", f"{V3}/rooms/{q(room_id)}/event/{q(event_id)}", token=tokens["alice"])
        self.assertEqual(status, 200)
        self.assertEqual(seen["content"], {})
        self.assertEqual(seen["unsigned"]["redacted_because"]["event_id"], redaction["event_id"])
        status, why = await self.request("GET", f"{V3}/rooms/{q(room_id)}/event/{q(redaction['event_id'])}",
                                         token=tokens["alice"])
        self.assertEqual((why["redacts"], why["content"]["reason"]), (event_id, "typo"))
        # alice (moderator) may redact bob's events.
        status, _ = await self.request("PUT", f"{V3}/rooms/{q(room_id)}/redact/{q(redaction['event_id'])}/r3", {},
                                       token=tokens["alice"])
        self.assertEqual(status, 200)
        # A non-member sees nothing of the room.
        self.assertMatrixError(await self.request("GET", f"{V3}/rooms/{q(room_id)}/event/{q(event_id)}",
                                                  token=tokens["eve"]), 404, "M_NOT_FOUND")
        self.assertMatrixError(await self.request("GET", f"{V3}/rooms/{q(room_id)}/state", token=tokens["eve"]),
                               403, "M_FORBIDDEN")
        self.assertMatrixError(await self.request("GET", f"{V3}/rooms/{q(room_id)}/event/{q('$missing')}",
                                                  token=tokens["alice"]), 404, "M_NOT_FOUND")

    @inline
    async def test_former_member_reads_state_as_it_was(self):
        tokens = await self.setup_users("alice", "bob")
        room_id = await self.create_room(tokens["alice"], preset="public_chat", name="Before")
        await self.request("POST", f"{V3}/join/{q(room_id)}", {}, token=tokens["bob"])
        await self.request("POST", f"{V3}/rooms/{q(room_id)}/leave", {}, token=tokens["bob"])
        await self.request("PUT", f"{V3}/rooms/{q(room_id)}/state/m.room.name", {"name": "After"},
                           token=tokens["alice"])
        state = await self.state(tokens["bob"], room_id)
        self.assertEqual(state[("m.room.name", "")]["content"]["name"], "Before")

    @inline
    async def test_aliases(self):
        tokens = await self.setup_users("alice", "bob")
        room_id = await self.create_room(tokens["alice"])
        alias = q("#hangout:test.local")
        status, _ = await self.request("PUT", f"{V3}/directory/room/{alias}", {"room_id": room_id},
                                       token=tokens["alice"])
        self.assertEqual(status, 200)
        self.assertMatrixError(await self.request("PUT", f"{V3}/directory/room/{alias}", {"room_id": room_id},
                                                  token=tokens["alice"]), 409, "M_UNKNOWN")
        self.assertMatrixError(await self.request("PUT", f"{V3}/directory/room/{q('#x:test.local')}",
                                                  {"room_id": room_id}, token=tokens["bob"]), 403, "M_FORBIDDEN")
        self.assertMatrixError(await self.request("PUT", f"{V3}/directory/room/{q('#x:elsewhere')}",
                                                  {"room_id": room_id}, token=tokens["alice"]), 400, "M_INVALID_PARAM")
        status, listed = await self.request("GET", f"{V3}/rooms/{q(room_id)}/aliases", token=tokens["alice"])
        self.assertEqual(listed, {"aliases": ["#hangout:test.local"]})
        self.assertMatrixError(await self.request("DELETE", f"{V3}/directory/room/{alias}", token=tokens["bob"]),
                               403, "M_FORBIDDEN")
        status, _ = await self.request("DELETE", f"{V3}/directory/room/{alias}", token=tokens["alice"])
        self.assertEqual(status, 200)
        self.assertMatrixError(await self.request("GET", f"{V3}/directory/room/{alias}"), 404, "M_NOT_FOUND")

    @inline
    async def test_capabilities(self):
        tokens = await self.setup_users("alice")
        status, body = await self.request("GET", f"{V3}/capabilities", token=tokens["alice"])
        versions = body["capabilities"]["m.room_versions"]
        self.assertEqual(versions["available"], {"10": "stable", "11": "stable", "12": "stable"})
        self.assertEqual(versions["default"], "11")


def _engines(mixin, name):
    sqlite = type(f"{name}SqliteTests", (mixin, RoomTestCase), {"engine": "sqlite"})
    postgres = type(f"{name}PostgresTests", (mixin, RoomTestCase), {"engine": "postgres"})
    return sqlite, postgres


RoomCreationSqliteTests, RoomCreationPostgresTests = _engines(RoomCreationTests, "RoomCreation")
EventIntegritySqliteTests, EventIntegrityPostgresTests = _engines(EventIntegrityTests, "EventIntegrity")
MembershipSqliteTests, MembershipPostgresTests = _engines(MembershipTests, "Membership")
SendAndStateSqliteTests, SendAndStatePostgresTests = _engines(SendAndStateTests, "SendAndState")
RedactionAndReadSqliteTests, RedactionAndReadPostgresTests = _engines(RedactionAndReadTests, "RedactionAndRead")

del unittest
