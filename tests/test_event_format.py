"""The pure event format: the specification's signing vectors, canonical JSON, hashes,
event and room IDs, redaction per room version and size limits."""

from __future__ import annotations

import copy

from signedjson.key import decode_signing_key_base64, get_verify_key
from twisted.trial import unittest

from homeserver.events.builder import build_event
from homeserver.events.canonical import CanonicalJsonError, canonical_json, check_canonical, encode_base64
from homeserver.events.hashing import check_content_hash, compute_event_id
from homeserver.events.redaction import prune_event_dict
from homeserver.events.room_versions import V10, V11, V12, UnsupportedRoomVersion, room_version
from homeserver.events.signing import sign_event, sign_json, verify_event_signature
from homeserver.events.validation import EventFormatError, EventTooLarge, check_pdu_format

SEED = "YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1"
KEY = decode_signing_key_base64("ed25519", "1", SEED)

MINIMAL = {"room_id": "!x:domain", "sender": "@a:domain", "origin": "domain", "origin_server_ts": 1000000,
           "signatures": {}, "hashes": {}, "type": "X", "content": {}, "prev_events": [], "auth_events": [],
           "depth": 3, "unsigned": {"age_ts": 1000000}}
REDACTABLE = {"content": {"body": "Here is the message content"}, "event_id": "$0:domain", "origin": "domain",
              "origin_server_ts": 1000000, "type": "m.room.message", "room_id": "!r:domain", "sender": "@u:domain",
              "signatures": {}, "unsigned": {"age_ts": 1000000}}


class SpecVectorTests(unittest.TestCase):
    def test_verify_key_of_the_seed(self):
        self.assertEqual(encode_base64(get_verify_key(KEY).encode()), "XGX0JRS2Af3be3knz2fBiRbApjm2Dh61gXDJA8kcJNI")

    def test_json_signing(self):
        self.assertEqual(sign_json({}, "domain", KEY)["signatures"]["domain"]["ed25519:1"],
                         "K8280/U9SSy9IVtjBuVeLr+HpOB4BQFWbg+UZaADMtTdGYI7Geitb76LTrr5QV/7Xg4ahLwYGYZzuHGZKM5ZAQ")
        signed = sign_json({"one": 1, "two": "Two"}, "domain", KEY)
        self.assertEqual(signed["signatures"]["domain"]["ed25519:1"],
                         "KqmLSbO39/Bzb0QIYE82zqLwsA+PDzYIpIRA2sRQ4sL53+sN6/fpNSoqE7BP7vBZhG6kYdD13EIMJpvhJI+6Bw")

    def test_minimal_event_signing(self):
        event = copy.deepcopy(MINIMAL)
        sign_event(V10, event, "domain", KEY)
        self.assertEqual(event["hashes"], {"sha256": "5jM4wQpv6lnBo7CLIghJuHdW+s2CMBJPUOGOC89ncos"})
        self.assertEqual(event["signatures"], {"domain": {
            "ed25519:1": "KxwGjPSDEtvnFgU00fwFz+l6d2pJM6XBIaMEn81SXPTRl16AqLAYqfIReFGZlHi5KLjAWbOoMszkwsQma+lYAg"}})
        self.assertEqual(event["unsigned"], {"age_ts": 1000000})
        self.assertEqual(compute_event_id(V10, event), "$8yif6p8EqgoSten2BLje9ntKm720NyFLWQv9tn8memc")
        self.assertTrue(check_content_hash(event))
        self.assertTrue(verify_event_signature(V10, event, "domain", {"ed25519:1": get_verify_key(KEY)}))

    def test_redactable_event_signing(self):
        event = copy.deepcopy(REDACTABLE)
        sign_event(V10, event, "domain", KEY)
        self.assertEqual(event["hashes"], {"sha256": "onLKD1bGljeBWQhWZ1kaP9SorVmRQNdN5aM2JYU2n/g"})
        self.assertEqual(event["signatures"]["domain"]["ed25519:1"],
                         "Wm+VzmOUOz08Ds+0NTWb1d4CZrVsJSikkeRxh6aCcUwu6pNC78FunoD7KNWzqFn241eYHYMGCA5McEiVPdhzBA")

    def test_v11_rules_drop_origin_before_signing(self):
        event = copy.deepcopy(MINIMAL)
        sign_event(V11, event, "domain", KEY)
        self.assertEqual(event["hashes"]["sha256"], "5jM4wQpv6lnBo7CLIghJuHdW+s2CMBJPUOGOC89ncos")
        self.assertEqual(event["signatures"]["domain"]["ed25519:1"],
                         "Jxp+1glFcZM+nnHpY0EkedRR7u0VmKsJYGnQqIvqus3UvL5X/p1y6wSkLhGoTBel6MZ9lrMIzUqrjqFquWJKBw")
        self.assertEqual(compute_event_id(V11, event), "$70O_oKlXzFbkfu0KE88USi98DjSWrOELrPj-8tisl8I")

    def test_tampering_is_detected(self):
        event = copy.deepcopy(MINIMAL)
        sign_event(V11, event, "domain", KEY)
        event["content"] = {"changed": True}
        self.assertFalse(check_content_hash(event))
        # Content is not covered by the signature of a pruned "X" event, but type is.
        event["type"] = "Y"
        self.assertFalse(verify_event_signature(V11, event, "domain", {"ed25519:1": get_verify_key(KEY)}))


class CanonicalJsonTests(unittest.TestCase):
    def test_spec_examples(self):
        cases = [({}, b"{}"), ({"b": "2", "a": "1"}, b'{"a":"1","b":"2"}'),
                 ({"a": "\u65E5"}, '{"a":"日"}'.encode()), ({"本": 2, "日": 1}, '{"日":1,"本":2}'.encode()),
                 ({"a": None}, b'{"a":null}')]
        for value, expected in cases:
            self.assertEqual(canonical_json(value), expected)

    def test_floats_and_big_integers_refused(self):
        for bad in ({"a": 1.5}, {"a": [1, {"b": 2.0}]}, {"a": 2 ** 53}, {"a": -(2 ** 53)}):
            self.assertRaises(CanonicalJsonError, check_canonical, bad)
        check_canonical({"a": 2 ** 53 - 1, "b": -(2 ** 53 - 1), "c": [True, None, "x"]})


class RedactionTests(unittest.TestCase):
    def test_v10_keeps_creator_only_and_origin(self):
        event = {"type": "m.room.create", "origin": "x", "content": {"creator": "@a:x", "m.federate": False},
                 "unsigned": {"age": 1}, "sender": "@a:x"}
        self.assertEqual(prune_event_dict(V10, event),
                         {"type": "m.room.create", "origin": "x", "content": {"creator": "@a:x"}, "sender": "@a:x"})

    def test_v11_keeps_whole_create_and_drops_origin(self):
        event = {"type": "m.room.create", "origin": "x", "content": {"room_version": "11", "m.federate": False}}
        self.assertEqual(prune_event_dict(V11, event),
                         {"type": "m.room.create", "content": {"room_version": "11", "m.federate": False}})

    def test_power_levels_invite_kept_from_v11(self):
        event = {"type": "m.room.power_levels", "content": {"invite": 50, "ban": 50, "notifications": {"room": 5}}}
        self.assertEqual(prune_event_dict(V10, event)["content"], {"ban": 50})
        self.assertEqual(prune_event_dict(V11, event)["content"], {"ban": 50, "invite": 50})

    def test_redaction_and_member_content(self):
        redaction = {"type": "m.room.redaction", "content": {"redacts": "$e", "reason": "spam"}, "redacts": "$e"}
        self.assertEqual(prune_event_dict(V10, redaction), {"type": "m.room.redaction", "content": {}})
        self.assertEqual(prune_event_dict(V11, redaction), {"type": "m.room.redaction", "content": {"redacts": "$e"}})
        member = {"type": "m.room.member", "content": {
            "membership": "invite", "displayname": "A",
            "third_party_invite": {"display_name": "x", "signed": {"mxid": "@a:x", "token": "t"}}}}
        self.assertEqual(prune_event_dict(V10, member)["content"], {"membership": "invite"})
        self.assertEqual(prune_event_dict(V11, member)["content"], {
            "membership": "invite", "third_party_invite": {"signed": {"mxid": "@a:x", "token": "t"}}})

    def test_join_rules_and_history_visibility(self):
        event = {"type": "m.room.join_rules", "content": {"join_rule": "restricted", "allow": [], "other": 1}}
        self.assertEqual(prune_event_dict(V11, event)["content"], {"join_rule": "restricted", "allow": []})
        message = {"type": "m.room.message", "content": {"body": "secret"}}
        self.assertEqual(prune_event_dict(V12, message)["content"], {})


class BuilderTests(unittest.TestCase):
    def build(self, version, **overrides):
        fields = dict(room_id="!r:domain", sender="@a:domain", event_type="m.room.message",
                      content={"body": "hi"}, prev_events=["$p"], auth_events=["$a"], depth=5,
                      origin_server_ts=1234, server_name="domain", signing_key=KEY)
        fields.update(overrides)
        return build_event(version, **fields)

    def test_event_id_is_the_reference_hash(self):
        event = self.build(V11)
        self.assertEqual(event.event_id, compute_event_id(V11, event.pdu))
        self.assertTrue(check_content_hash(event.pdu))
        self.assertTrue(verify_event_signature(V11, event.pdu, "domain", {"ed25519:1": get_verify_key(KEY)}))
        check_pdu_format(event.pdu)

    def test_v12_create_event_names_the_room(self):
        create = self.build(V12, room_id=None, event_type="m.room.create", state_key="",
                            content={"room_version": "12"}, prev_events=[], auth_events=[], depth=1)
        self.assertNotIn("room_id", create.pdu)
        self.assertEqual(create.room_id, "!" + create.event_id[1:])

    def test_redacts_lives_where_the_version_keeps_it(self):
        v10 = self.build(V10, event_type="m.room.redaction", content={}, redacts="$target")
        self.assertEqual((v10.pdu.get("redacts"), v10.redacts), ("$target", "$target"))
        v11 = self.build(V11, event_type="m.room.redaction", content={"redacts": "$target"}, redacts="$target")
        self.assertEqual(("redacts" in v11.pdu, v11.redacts), (False, "$target"))

    def test_size_and_field_limits(self):
        with self.assertRaises(EventTooLarge):
            self.build(V11, content={"body": "x" * 70000})
        with self.assertRaises(EventFormatError):
            self.build(V11, event_type="t" * 256)
        with self.assertRaises(EventFormatError):
            self.build(V11, content={"n": 0.5})

    def test_pdu_format_limits(self):
        event = self.build(V11).pdu
        for bad in ({"prev_events": ["$p"] * 21}, {"auth_events": ["$a"] * 11}, {"depth": "5"},
                    {"prev_events": ["not-an-id"]}, {"state_key": 5}):
            self.assertRaises(EventFormatError, check_pdu_format, {**event, **bad})

    def test_room_versions_table(self):
        self.assertEqual(room_version("12"), V12)
        self.assertRaises(UnsupportedRoomVersion, room_version, "9")
        self.assertTrue(V12.infinite_creator_power and V12.room_id_from_create)
        self.assertFalse(V11.room_id_from_create or V10.creator_from_sender)
