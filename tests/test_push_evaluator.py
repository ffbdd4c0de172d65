"""The push rule evaluator (pure): every predefined rule, every condition kind, globs,
dotted keys, actions, and merging the user's stored rules with the predefined ones."""

from __future__ import annotations

import time

from twisted.trial import unittest

from homeserver.events.event import Event
from homeserver.events.room_versions import KNOWN_ROOM_VERSIONS
from homeserver.push import default_rules
from homeserver.push.evaluator import (LEGACY_MENTION_RULE_IDS, NO_MATCH, PushContext, PushRuleEvaluator,
                                       compile_condition, glob_matcher, glob_matches, interpret_actions,
                                       parse_member_count, split_key)
from homeserver.push.rules import merge_rules
from storage.stores.push_rules import DefaultRuleSetting, StoredRule

ALICE = "@alice:test.local"
BOB = "@bob:test.local"
ROOM = "!room:test.local"


def event(type="m.room.message", sender=BOB, state_key=None, room_id=ROOM, **content):
    data = {"type": type, "sender": sender, "room_id": room_id, "content": content,
            "event_id": "$e", "origin_server_ts": 1}
    if state_key is not None:
        data["state_key"] = state_key
    return data


def message(body="hello", msgtype="m.text", **extra):
    return event(body=body, msgtype=msgtype, **extra)


def context(**overrides):
    values = {"user_id": ALICE, "member_count": 5, "display_name": "Alice", "sender_power_level": 0}
    values.update(overrides)
    return PushContext(**values)


def evaluator(own=(), settings=(), legacy=False, user_id=ALICE):
    return merge_rules(user_id, own, settings, legacy).evaluator


def condition_holds(condition, ev, ctx=None):
    from homeserver.push.evaluator import _Event, _PermissionCache
    ctx = ctx or context()
    return compile_condition(condition)(_Event(ev), ctx, _PermissionCache(ctx))


class PredefinedRulesTests(unittest.TestCase):
    def setUp(self):
        self.evaluator = evaluator()

    def evaluate(self, ev, **ctx):
        return self.evaluator.evaluate(ev, context(**ctx))

    def test_the_specification_rule_list_and_order(self):
        ruleset = merge_rules(ALICE, [], [])
        self.assertEqual([r.rule_id for r in ruleset.rules("override")], [
            ".m.rule.master", ".m.rule.suppress_notices", ".m.rule.invite_for_me", ".m.rule.member_event",
            ".m.rule.is_user_mention", ".m.rule.is_room_mention", ".m.rule.tombstone", ".m.rule.reaction",
            ".m.rule.room.server_acl", ".m.rule.suppress_edits"])
        self.assertEqual(ruleset.rules("content"), [])
        self.assertEqual(ruleset.rules("room"), [])
        self.assertEqual(ruleset.rules("sender"), [])
        self.assertEqual([r.rule_id for r in ruleset.rules("underride")], [
            ".m.rule.call", ".m.rule.encrypted_room_one_to_one", ".m.rule.room_one_to_one", ".m.rule.message",
            ".m.rule.encrypted"])
        rules = ruleset.to_json()
        self.assertTrue(all(r["default"] for kind in rules.values() for r in kind))
        self.assertEqual([r["rule_id"] for kind in rules.values() for r in kind if not r["enabled"]],
                         [".m.rule.master"])

    def test_user_values_are_filled_in(self):
        ruleset = merge_rules(ALICE, [], []).to_json()
        invite = next(r for r in ruleset["override"] if r["rule_id"] == ".m.rule.invite_for_me")
        self.assertEqual(invite["conditions"][2], {"kind": "event_match", "key": "state_key", "pattern": ALICE})
        mention = next(r for r in ruleset["override"] if r["rule_id"] == ".m.rule.is_user_mention")
        self.assertEqual(mention["conditions"], [{"kind": "event_property_contains",
                                                  "key": "content.m\\.mentions.user_ids", "value": ALICE}])
        # The module data keeps its placeholders.
        self.assertEqual(default_rules.OVERRIDE[2]["conditions"][2]["pattern"], default_rules.USER_ID)

    def test_a_message_notifies(self):
        result = self.evaluate(message())
        self.assertEqual((result.rule_id, result.kind), (".m.rule.message", "underride"))
        self.assertTrue(result.notify)
        self.assertFalse(result.highlight)
        self.assertIsNone(result.sound)

    def test_master_rule_disabled_by_default_and_silences_everything_when_enabled(self):
        settings = [DefaultRuleSetting("override", ".m.rule.master", True, None)]
        silenced = evaluator(settings=settings)
        mention = message(**{"m.mentions": {"user_ids": [ALICE]}})
        invite = event("m.room.member", state_key=ALICE, membership="invite")
        for ev in (message(), mention, invite, event("m.call.invite")):
            result = silenced.evaluate(ev, context())
            self.assertEqual(result.rule_id, ".m.rule.master")
            self.assertFalse(result.notify)
            self.assertFalse(result.highlight)

    def test_master_rule_comes_before_the_users_own_overrides(self):
        own = [StoredRule("override", "mine", 0, [], None, ["notify"], True)]
        settings = [DefaultRuleSetting("override", ".m.rule.master", True, None)]
        self.assertEqual(evaluator(own, settings).evaluate(message(), context()).rule_id, ".m.rule.master")
        self.assertEqual(evaluator(own).evaluate(message(), context()).rule_id, "mine")

    def test_notice_is_suppressed(self):
        result = self.evaluate(message(msgtype="m.notice"))
        self.assertEqual(result.rule_id, ".m.rule.suppress_notices")
        self.assertFalse(result.notify)

    def test_invite_for_me(self):
        result = self.evaluate(event("m.room.member", state_key=ALICE, membership="invite"))
        self.assertEqual(result.rule_id, ".m.rule.invite_for_me")
        self.assertTrue(result.notify)
        self.assertEqual(result.sound, "default")
        self.assertFalse(result.highlight)

    def test_other_member_events_are_silent(self):
        for ev in (event("m.room.member", state_key="@carol:test.local", membership="invite"),
                   event("m.room.member", state_key=BOB, membership="join"),
                   event("m.room.member", state_key=ALICE, membership="ban")):
            result = self.evaluate(ev)
            self.assertEqual(result.rule_id, ".m.rule.member_event")
            self.assertFalse(result.notify)

    def test_user_mention_highlights(self):
        result = self.evaluate(message(**{"m.mentions": {"user_ids": [BOB, ALICE]}}))
        self.assertEqual(result.rule_id, ".m.rule.is_user_mention")
        self.assertTrue(result.notify)
        self.assertTrue(result.highlight)
        self.assertEqual(result.sound, "default")

    def test_mention_of_someone_else_is_an_ordinary_message(self):
        result = self.evaluate(message(**{"m.mentions": {"user_ids": [BOB]}}))
        self.assertEqual(result.rule_id, ".m.rule.message")
        self.assertFalse(result.highlight)

    def test_body_mention_without_m_mentions_does_not_highlight(self):
        result = self.evaluate(message(body="alice: hi Alice @room"))
        self.assertEqual(result.rule_id, ".m.rule.message")

    def test_room_mention_needs_the_senders_permission(self):
        room_mention = message(body="everyone!", **{"m.mentions": {"room": True}})
        allowed = self.evaluate(room_mention, sender_power_level=50)
        self.assertEqual(allowed.rule_id, ".m.rule.is_room_mention")
        self.assertTrue(allowed.highlight)
        self.assertTrue(allowed.notify)
        denied = self.evaluate(room_mention, sender_power_level=49)
        self.assertEqual(denied.rule_id, ".m.rule.message")
        self.assertFalse(denied.highlight)
        lowered = self.evaluate(room_mention, sender_power_level=0, notification_levels={"room": 0})
        self.assertEqual(lowered.rule_id, ".m.rule.is_room_mention")
        # "room": "true" is not m.mentions.room == true
        self.assertEqual(self.evaluate(message(**{"m.mentions": {"room": "true"}}), sender_power_level=100).rule_id,
                         ".m.rule.message")

    def test_tombstone_highlights(self):
        result = self.evaluate(event("m.room.tombstone", state_key="", body="moved",
                                     replacement_room="!new:test.local"))
        self.assertEqual(result.rule_id, ".m.rule.tombstone")
        self.assertTrue(result.highlight)
        self.assertTrue(result.notify)
        # Not a state event (or another state key): the rule does not apply.
        self.assertIs(self.evaluate(event("m.room.tombstone", body="moved")), NO_MATCH)
        self.assertIs(self.evaluate(event("m.room.tombstone", state_key="x")), NO_MATCH)

    def test_reaction_is_suppressed(self):
        result = self.evaluate(event("m.reaction", **{"m.relates_to": {"rel_type": "m.annotation",
                                                                       "event_id": "$x", "key": "👍"}}))
        self.assertEqual(result.rule_id, ".m.rule.reaction")
        self.assertFalse(result.notify)

    def test_server_acl_is_suppressed(self):
        result = self.evaluate(event("m.room.server_acl", state_key="", allow=["*"]))
        self.assertEqual(result.rule_id, ".m.rule.room.server_acl")
        self.assertFalse(result.notify)

    def test_edit_is_suppressed(self):
        relation = {"rel_type": "m.replace", "event_id": "$x"}
        edit = message(body="* fixed", **{"m.new_content": {"body": "fixed"}, "m.relates_to": relation})
        result = self.evaluate(edit)
        self.assertEqual(result.rule_id, ".m.rule.suppress_edits")
        self.assertFalse(result.notify)
        # In the specification's order a mention comes first: an edit that newly mentions
        # the user (clients list only new mentions in an edit) does notify.
        mention = message(body="* hi", **{"m.relates_to": relation, "m.mentions": {"user_ids": [ALICE]}})
        self.assertEqual(self.evaluate(mention).rule_id, ".m.rule.is_user_mention")
        # A reply (another relation) is not an edit.
        reply = message(body="re", **{"m.relates_to": {"m.in_reply_to": {"event_id": "$x"}}})
        self.assertEqual(self.evaluate(reply).rule_id, ".m.rule.message")

    def test_call_rings(self):
        result = self.evaluate(event("m.call.invite", call_id="c", lifetime=60000))
        self.assertEqual(result.rule_id, ".m.rule.call")
        self.assertEqual(result.sound, "ring")
        self.assertTrue(result.notify)

    def test_one_to_one_rooms_make_a_sound(self):
        result = self.evaluate(message(), member_count=2)
        self.assertEqual(result.rule_id, ".m.rule.room_one_to_one")
        self.assertEqual(result.sound, "default")
        self.assertTrue(result.notify)
        self.assertEqual(self.evaluate(message(), member_count=3).rule_id, ".m.rule.message")
        # Unknown member count: the rule cannot match.
        self.assertEqual(self.evaluate(message(), member_count=None).rule_id, ".m.rule.message")

    def test_encrypted_events(self):
        encrypted = event("m.room.encrypted", algorithm="m.megolm.v1.aes-sha2", ciphertext="...")
        one_to_one = self.evaluate(encrypted, member_count=2)
        self.assertEqual(one_to_one.rule_id, ".m.rule.encrypted_room_one_to_one")
        self.assertEqual(one_to_one.sound, "default")
        group = self.evaluate(encrypted, member_count=10)
        self.assertEqual(group.rule_id, ".m.rule.encrypted")
        self.assertTrue(group.notify)
        self.assertIsNone(group.sound)

    def test_other_events_match_nothing(self):
        for ev in (event("m.room.topic", state_key="", topic="x"), event("m.typing"),
                   event("m.room.name", state_key="", name="n")):
            result = self.evaluate(ev)
            self.assertIs(result, NO_MATCH)
            self.assertFalse(result.matched)
            self.assertFalse(result.notify)

    def test_own_events_never_notify(self):
        self.assertIs(self.evaluate(message(sender=ALICE, **{"m.mentions": {"user_ids": [ALICE]}})), NO_MATCH)

    def test_event_objects_are_accepted(self):
        version = KNOWN_ROOM_VERSIONS["11"]
        pdu = {"type": "m.room.message", "sender": BOB, "room_id": ROOM, "content": {
            "body": "hi", "msgtype": "m.text", "m.mentions": {"user_ids": [ALICE]}}, "depth": 3,
            "origin_server_ts": 1, "prev_events": [], "auth_events": []}
        result = self.evaluator.evaluate(Event(pdu, version, "$abc"), context())
        self.assertEqual(result.rule_id, ".m.rule.is_user_mention")

    def test_legacy_mention_rules_when_asked_for(self):
        legacy = evaluator(legacy=True)
        self.assertEqual(LEGACY_MENTION_RULE_IDS, default_rules.LEGACY_MENTION_RULE_IDS)
        ruleset = merge_rules(ALICE, [], [], legacy_mention_rules=True)
        override_ids = [r.rule_id for r in ruleset.rules("override")]
        self.assertEqual(override_ids[override_ids.index(".m.rule.is_user_mention") + 1],
                         ".m.rule.contains_display_name")
        self.assertEqual(override_ids[override_ids.index(".m.rule.is_room_mention") + 1], ".m.rule.roomnotif")
        self.assertEqual(ruleset.to_json()["content"][0]["pattern"], "alice")
        self.assertEqual(legacy.evaluate(message(body="hi Alice!"), context()).rule_id,
                         ".m.rule.contains_display_name")
        self.assertEqual(legacy.evaluate(message(body="hi @room"), context(sender_power_level=50)).rule_id,
                         ".m.rule.roomnotif")
        self.assertEqual(legacy.evaluate(message(body="ping alice"), context(display_name=None)).rule_id,
                         ".m.rule.contains_user_name")
        # An event with m.mentions is not matched by them.
        for body in ("hi Alice!", "hi @room", "ping alice"):
            self.assertEqual(legacy.evaluate(message(body=body, **{"m.mentions": {}}),
                                             context(sender_power_level=100)).rule_id, ".m.rule.message")


class GlobTests(unittest.TestCase):
    def test_whole_value(self):
        self.assertTrue(glob_matches("lunc?*", "Lunch plans"))
        self.assertTrue(glob_matches("lunc?*", "LUNCH"))
        self.assertFalse(glob_matches("lunc?*", " lunch"))
        self.assertFalse(glob_matches("lunc?*", "lunc"))
        self.assertTrue(glob_matches("m.notice", "M.NOTICE"))
        self.assertFalse(glob_matches("m.notice", "m.noticed"))
        self.assertFalse(glob_matches("m.notice", "m_notice"))  # '.' is literal, not a regex
        self.assertTrue(glob_matches("*", ""))
        self.assertTrue(glob_matches("", ""))
        self.assertFalse(glob_matches("", "x"))
        self.assertTrue(glob_matches("a*b*c", "abbbc"))
        self.assertFalse(glob_matches("a*b*c", "abcd"))
        self.assertTrue(glob_matches("[x](y)+", "[X](Y)+"))
        self.assertTrue(glob_matches("??", "éa"))
        self.assertTrue(glob_matches("a*", "a\nb"))

    def test_words_in_body(self):
        self.assertTrue(glob_matches("ex*ple", "An example event.", True))
        self.assertTrue(glob_matches("ex*ple", "exple", True))
        self.assertTrue(glob_matches("ex*ple", "An exciting triple-whammy", True))
        self.assertFalse(glob_matches("ex*ple", "An examples", True))
        self.assertTrue(glob_matches("cake", "I like CAKE.", True))
        self.assertFalse(glob_matches("cake", "pancakes", True))
        self.assertFalse(glob_matches("cake", "cake_pan", True))  # '_' is a word character
        self.assertTrue(glob_matches("cake", "cake-pan", True))
        self.assertTrue(glob_matches("@room", "hey @room!", True))
        self.assertTrue(glob_matches("c?ke", "a coke", True))
        self.assertFalse(glob_matches("c?ke", "a cooke", True))
        self.assertTrue(glob_matches("cake*lie", "the cake is a lie", True))
        self.assertFalse(glob_matches("cake*lie", "the cake is a lier", True))
        self.assertTrue(glob_matches("cake*lie", "the cake is a lier, a lie", True))

    def test_compiled_once_and_cached(self):
        self.assertIs(glob_matcher("cake*lie", True), glob_matcher("cake*lie", True))

    def test_linear_on_long_bodies(self):
        body = "a " * 40000
        start = time.monotonic()
        for pattern in ("a*a*a*a*a*b", "*a?*?a*b", "a*b", "b"):
            self.assertFalse(glob_matches(pattern, body, True))
            self.assertFalse(glob_matches(pattern, body))
        self.assertLess(time.monotonic() - start, 1.0)


class ConditionTests(unittest.TestCase):
    def test_dotted_keys(self):
        self.assertEqual(split_key("content.body"), ("content", "body"))
        self.assertEqual(split_key("content.m\\.relates_to.rel_type"), ("content", "m.relates_to", "rel_type"))
        self.assertEqual(split_key("content.m\\\\foo"), ("content", "m\\foo"))
        self.assertEqual(split_key("content.m\\xfoo"), ("content", "m\\xfoo"))

    def test_event_match(self):
        topic = event("m.room.topic", state_key="", topic="Lunch plans")
        self.assertTrue(condition_holds({"kind": "event_match", "key": "content.topic", "pattern": "lunc?*"}, topic))
        self.assertFalse(condition_holds({"kind": "event_match", "key": "content.topic", "pattern": "lunch"}, topic))
        self.assertTrue(condition_holds({"kind": "event_match", "key": "state_key", "pattern": ""}, topic))
        self.assertTrue(condition_holds({"kind": "event_match", "key": "room_id", "pattern": "!room:*"}, topic))
        # Absent or not a string: no match, even for '*'.
        self.assertFalse(condition_holds({"kind": "event_match", "key": "content.name", "pattern": "*"}, topic))
        self.assertFalse(condition_holds({"kind": "event_match", "key": "content.n", "pattern": "*"},
                                         event(n=None)))
        self.assertFalse(condition_holds({"kind": "event_match", "key": "content.n", "pattern": "*"}, event(n=1)))
        self.assertFalse(condition_holds({"kind": "event_match", "key": "content", "pattern": "*"}, topic))
        nested = event(**{"m.relates_to": {"rel_type": "m.thread"}})
        self.assertTrue(condition_holds({"kind": "event_match", "key": "content.m\\.relates_to.rel_type",
                                         "pattern": "m.thread"}, nested))
        self.assertFalse(condition_holds({"kind": "event_match", "key": "content.m.relates_to.rel_type",
                                          "pattern": "m.thread"}, nested))
        # content.body: word-bounded substrings; other keys: the whole value.
        self.assertTrue(condition_holds({"kind": "event_match", "key": "content.body", "pattern": "lunch"},
                                        message(body="Lunch time!")))
        self.assertFalse(condition_holds({"kind": "event_match", "key": "content.topic", "pattern": "lunch"},
                                         event(topic="Lunch time!")))

    def test_event_property_is(self):
        create = event("m.room.create", state_key="", **{"m.federate": True, "room_version": "11", "n": 1,
                                                         "nothing": None, "list": [1]})
        holds = lambda key, value: condition_holds(  # noqa: E731
            {"kind": "event_property_is", "key": key, "value": value}, create)
        self.assertTrue(holds("content.m\\.federate", True))
        self.assertFalse(holds("content.m\\.federate", "true"))
        self.assertFalse(holds("content.m\\.federate", 1))
        self.assertTrue(holds("content.n", 1))
        self.assertFalse(holds("content.n", True))
        self.assertFalse(holds("content.n", "1"))
        self.assertTrue(holds("content.room_version", "11"))
        self.assertTrue(holds("content.nothing", None))
        self.assertFalse(holds("content.absent", None))
        self.assertFalse(holds("content.list", [1]))  # compound values never match
        self.assertFalse(condition_holds({"kind": "event_property_is", "key": "content.n"}, create))

    def test_event_property_contains(self):
        aliases = event("m.room.canonical_alias", state_key="", alias="#somewhere:localhost",
                        alt_aliases=["#somewhere:example.org", "#myroom:example.com", 7, True, None, {"x": 1}])
        holds = lambda key, value: condition_holds(  # noqa: E731
            {"kind": "event_property_contains", "key": key, "value": value}, aliases)
        self.assertTrue(holds("content.alt_aliases", "#myroom:example.com"))
        self.assertFalse(holds("content.alt_aliases", ":example.com"))
        self.assertTrue(holds("content.alt_aliases", 7))
        self.assertFalse(holds("content.alt_aliases", "7"))
        self.assertTrue(holds("content.alt_aliases", True))
        self.assertFalse(holds("content.alt_aliases", 1))
        self.assertTrue(holds("content.alt_aliases", None))
        self.assertFalse(holds("content.alias", "#somewhere:localhost"))  # not an array
        self.assertFalse(holds("content.missing", "x"))

    def test_contains_display_name(self):
        condition = {"kind": "contains_display_name"}
        self.assertTrue(condition_holds(condition, message(body="hey alice, lunch?")))
        self.assertFalse(condition_holds(condition, message(body="hey alicerobot")))
        self.assertFalse(condition_holds(condition, message(body="hey alice"), context(display_name=None)))
        self.assertFalse(condition_holds(condition, message(body="hey alice"), context(display_name="")))
        self.assertFalse(condition_holds(condition, event("m.room.topic", topic="alice")))
        # The display name is text, not a glob.
        self.assertTrue(condition_holds(condition, message(body="hi A*ce!"), context(display_name="A*ce")))
        self.assertFalse(condition_holds(condition, message(body="hi Alice!"), context(display_name="A*ce")))

    def test_room_member_count(self):
        cases = [("2", 2, True), ("2", 3, False), ("==2", 2, True), ("<2", 1, True), ("<2", 2, False),
                 (">2", 3, True), (">2", 2, False), ("<=10", 10, True), ("<=10", 11, False), (">=3", 3, True),
                 (">=3", 2, False)]
        for spec, count, expected in cases:
            self.assertEqual(condition_holds({"kind": "room_member_count", "is": spec}, message(),
                                             context(member_count=count)), expected, (spec, count))
        self.assertEqual(parse_member_count("<=10"), ("<=", 10))
        self.assertEqual(parse_member_count("7"), ("==", 7))
        for invalid in ("", "=>2", "two", "<", None, 2, "2.5"):
            self.assertIsNone(parse_member_count(invalid))
            self.assertFalse(condition_holds({"kind": "room_member_count", "is": invalid}, message(),
                                             context(member_count=2)))
        self.assertFalse(condition_holds({"kind": "room_member_count", "is": "2"}, message(),
                                         context(member_count=None)))

    def test_sender_notification_permission(self):
        condition = {"kind": "sender_notification_permission", "key": "room"}
        self.assertTrue(condition_holds(condition, message(), context(sender_power_level=50)))
        self.assertFalse(condition_holds(condition, message(), context(sender_power_level=49)))
        self.assertTrue(condition_holds(condition, message(), context(sender_power_level=10,
                                                                      notification_levels={"room": 10})))
        self.assertFalse(condition_holds(condition, message(), context(sender_power_level=10,
                                                                       notification_levels={"room": "10"})))
        self.assertTrue(condition_holds(condition, message(), context(sender_power_level=float("inf"))))
        self.assertFalse(condition_holds(condition, message(), context(sender_power_level=None)))
        asked = []

        def permission(key):
            asked.append(key)
            return key == "room"
        ctx = context(sender_power_level=None, notification_permission=permission)
        self.assertTrue(condition_holds(condition, message(), ctx))
        self.assertFalse(condition_holds({"kind": "sender_notification_permission", "key": "other"}, message(), ctx))
        self.assertEqual(asked, ["room", "other"])

    def test_permission_callable_is_asked_lazily_and_once(self):
        asked = []

        def permission(key):
            asked.append(key)
            return False
        own = [StoredRule("override", "twice", 0, [{"kind": "sender_notification_permission", "key": "room"}],
                          None, ["notify"], True)]
        ev = evaluator(own)
        ev.evaluate(message(**{"m.mentions": {"room": True}}), context(notification_permission=permission))
        self.assertEqual(asked, ["room"])  # "twice" and .m.rule.is_room_mention share one answer
        ev.evaluate(message(), context(notification_permission=permission))
        self.assertEqual(asked, ["room", "room"])  # only the custom rule got that far

    def test_unknown_or_malformed_conditions_never_match(self):
        for condition in ({"kind": "org.example.unknown"}, {"kind": "event_match", "key": "type"},
                          {"kind": "event_match", "pattern": "*"}, {"kind": "event_property_is", "key": "type",
                                                                    "value": {"a": 1}},
                          {"kind": "sender_notification_permission"}, "event_match", {}):
            self.assertFalse(condition_holds(condition, message()), condition)
        own = [StoredRule("override", "odd", 0, [{"kind": "event_match", "key": "type", "pattern": "m.room.message"},
                                                 {"kind": "org.example.unknown"}], None, ["notify",
                                                                                          {"set_tweak": "highlight"}],
                          True)]
        self.assertEqual(evaluator(own).evaluate(message(), context()).rule_id, ".m.rule.message")

    def test_rule_without_conditions_always_matches(self):
        own = [StoredRule("underride", "catch_all", 0, [], None, ["notify", {"set_tweak": "sound", "value": "x"}],
                          True)]
        result = evaluator(own).evaluate(event("m.room.topic", state_key="", topic="t"), context())
        self.assertEqual((result.rule_id, result.sound), ("catch_all", "x"))


class UserRulesTests(unittest.TestCase):
    def test_kind_order_and_user_rules_before_defaults(self):
        own = [
            StoredRule("content", "cake", 1, None, "cake", ["notify", {"set_tweak": "sound", "value": "cake.wav"}],
                       True),
            StoredRule("content", "cakelie", 2, None, "cake*lie", [], True),
            StoredRule("room", ROOM, 0, None, None, [], True),
            StoredRule("sender", BOB, 0, None, None, ["notify", {"set_tweak": "highlight"}], True),
            StoredRule("override", "beer", 0, [{"kind": "event_match", "key": "content.body", "pattern": "beer"},
                                               {"kind": "room_member_count", "is": "<=10"}],
                       None, ["notify", {"set_tweak": "sound", "value": "beeroclock.wav"}], True),
            StoredRule("underride", "topics", 0, [{"kind": "event_match", "key": "type",
                                                   "pattern": "m.room.topic"}], None, ["notify"], True),
        ]
        ev = evaluator(own)
        other_room = "!other:test.local"
        carol = "@carol:test.local"
        cases = [
            (message(body="beer?"), "beer"),                                      # override beats content
            (message(body="beer?", room_id=other_room), "beer"),
            (message(body="the cake is a lie"), "cakelie"),                       # higher priority content rule
            (message(body="cake!", sender=carol), "cake"),
            (message(body="hello"), ROOM),                                        # content beats room
            (message(body="hello", room_id=other_room), BOB),                     # room beats sender
            (message(body="hello", room_id=other_room, sender=carol), ".m.rule.message"),
            (message(body="notice", msgtype="m.notice"), ".m.rule.suppress_notices"),  # default override first
            (event("m.room.topic", state_key="", topic="x", room_id=other_room, sender=carol), "topics"),
        ]
        for ev_, expected in cases:
            self.assertEqual(ev.evaluate(ev_, context()).rule_id, expected, ev_["content"])
        beer = ev.evaluate(message(body="beer?"), context(member_count=11))
        self.assertEqual(beer.rule_id, ROOM)

    def test_disabled_rules_and_changed_defaults(self):
        own = [StoredRule("content", "cake", 0, None, "cake", ["notify"], False)]
        settings = [DefaultRuleSetting("underride", ".m.rule.message", False, None),
                    DefaultRuleSetting("override", ".m.rule.suppress_notices", None,
                                       ["notify", {"set_tweak": "sound", "value": "bell"}])]
        ev = evaluator(own, settings)
        self.assertIs(ev.evaluate(message(body="cake"), context()), NO_MATCH)
        notice = ev.evaluate(message(msgtype="m.notice"), context())
        self.assertEqual((notice.rule_id, notice.notify, notice.sound), (".m.rule.suppress_notices", True, "bell"))
        ruleset = merge_rules(ALICE, own, settings)
        self.assertFalse(ruleset.find("underride", ".m.rule.message").enabled)
        self.assertTrue(ruleset.find("underride", ".m.rule.message").default)
        self.assertFalse(ruleset.find("content", "cake").default)

    def test_from_ruleset_json_agrees(self):
        own = [StoredRule("sender", BOB, 0, None, None, ["notify", {"set_tweak": "highlight"}], True)]
        ruleset = merge_rules(ALICE, own, [DefaultRuleSetting("override", ".m.rule.reaction", False, None)])
        from_json = PushRuleEvaluator.from_ruleset_json({"global": ruleset.to_json()})
        for ev in (message(), message(sender="@carol:test.local"), event("m.reaction", sender="@carol:test.local"),
                   message(msgtype="m.notice")):
            self.assertEqual(from_json.evaluate(ev, context()), ruleset.evaluator.evaluate(ev, context()))

    def test_actions(self):
        actions, notify, highlight, sound, tweaks = interpret_actions(
            ["notify", "dont_notify", "coalesce", {"set_tweak": "highlight", "value": False},
             {"set_tweak": "sound", "value": "bing"}, {"set_tweak": "org.example.light", "value": "red"}])
        self.assertEqual(actions, ("notify", {"set_tweak": "highlight", "value": False},
                                   {"set_tweak": "sound", "value": "bing"},
                                   {"set_tweak": "org.example.light", "value": "red"}))
        self.assertEqual((notify, highlight, sound), (True, False, "bing"))
        self.assertEqual(tweaks, {"highlight": False, "sound": "bing", "org.example.light": "red"})
        self.assertEqual(interpret_actions(["dont_notify"])[:3], ((), False, False))
        self.assertTrue(interpret_actions([{"set_tweak": "highlight"}])[2])

    def test_evaluation_is_fast(self):
        ev = evaluator([StoredRule("content", f"word{i}", i, None, f"word{i}*", ["notify"], True)
                        for i in range(20)])
        events = [message(body=f"some ordinary chat message number {i}") for i in range(2000)]
        ctx = context()
        start = time.monotonic()
        for e in events:
            ev.evaluate(e, ctx)
        self.assertLess(time.monotonic() - start, 2.0)
