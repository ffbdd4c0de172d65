"""Push rules and pushers over the client-server API, on both engines: the predefined
rules, adding/ordering/changing/deleting rules, the errors, and pushers."""

from __future__ import annotations

from urllib.parse import quote

from homeserver.push.evaluator import PushContext
from tests.support.server import HomeserverTestCase, inline

V3 = "/_matrix/client/v3"
RULES = f"{V3}/pushrules/global"

OVERRIDE_IDS = [".m.rule.master", ".m.rule.suppress_notices", ".m.rule.invite_for_me", ".m.rule.member_event",
                ".m.rule.is_user_mention", ".m.rule.is_room_mention", ".m.rule.tombstone", ".m.rule.reaction",
                ".m.rule.room.server_acl", ".m.rule.suppress_edits"]
UNDERRIDE_IDS = [".m.rule.call", ".m.rule.encrypted_room_one_to_one", ".m.rule.room_one_to_one", ".m.rule.message",
                 ".m.rule.encrypted"]

PUSHER = {"kind": "http", "app_id": "com.example.app.ios", "pushkey": "APA91bHPRgkF3JUikC4ENAHEeMrd41Zxv3h",
          "app_display_name": "Mat Rix", "device_display_name": "iPhone 9", "profile_tag": "xxyyzz", "lang": "en",
          "data": {"url": "https://push.example.com/_matrix/push/v1/notify", "format": "event_id_only"}}


def ids(rules):
    return [rule["rule_id"] for rule in rules]


class PushRulesApiTests:
    @inline
    async def setUp(self):
        await super().setUp()
        session = await self.register("alice")
        self.token = session["access_token"]
        self.user_id = session["user_id"]

    async def get(self, path, **kwargs):
        return await self.request("GET", path, token=self.token, **kwargs)

    async def put(self, path, body, **kwargs):
        return await self.request("PUT", path, body, token=self.token, **kwargs)

    async def put_content_rule(self, rule_id, pattern, **query):
        status, body = await self.put(f"{RULES}/content/{rule_id}", {"pattern": pattern, "actions": ["notify"]},
                                      query=query or None)
        self.assertEqual(status, 200, body)

    @inline
    async def test_lists_the_predefined_rules(self):
        status, body = await self.get(f"{V3}/pushrules/")
        self.assertEqual(status, 200, body)
        ruleset = body["global"]
        self.assertEqual(sorted(ruleset), ["content", "override", "room", "sender", "underride"])
        self.assertEqual(ids(ruleset["override"]), OVERRIDE_IDS)
        self.assertEqual(ids(ruleset["underride"]), UNDERRIDE_IDS)
        self.assertEqual((ruleset["content"], ruleset["room"], ruleset["sender"]), ([], [], []))
        master = ruleset["override"][0]
        self.assertEqual(master, {"rule_id": ".m.rule.master", "default": True, "enabled": False, "actions": [],
                                  "conditions": []})
        invite = ruleset["override"][2]
        self.assertEqual(invite["conditions"][2], {"kind": "event_match", "key": "state_key",
                                                   "pattern": self.user_id})
        self.assertEqual(invite["actions"], ["notify", {"set_tweak": "sound", "value": "default"}])
        status, global_only = await self.get(f"{RULES}/")
        self.assertEqual((status, global_only), (200, ruleset))
        status, underride = await self.get(f"{RULES}/underride/")
        self.assertEqual((status, ids(underride)), (200, UNDERRIDE_IDS))
        status, rule = await self.get(f"{RULES}/underride/.m.rule.message")
        self.assertEqual((status, rule), (200, {"rule_id": ".m.rule.message", "default": True, "enabled": True,
                                                "actions": ["notify"], "conditions": [
                                                    {"kind": "event_match", "key": "type",
                                                     "pattern": "m.room.message"}]}))

    @inline
    async def test_requires_authentication(self):
        self.assertMatrixError(await self.request("GET", f"{V3}/pushrules/"), 401, "M_MISSING_TOKEN")
        self.assertMatrixError(await self.request("PUT", f"{RULES}/content/x", {"pattern": "x", "actions": []}),
                               401, "M_MISSING_TOKEN")
        self.assertMatrixError(await self.request("GET", f"{V3}/pushers"), 401, "M_MISSING_TOKEN")

    @inline
    async def test_content_rules_and_ordering(self):
        await self.put_content_rule("cake", "cake")
        status, rule = await self.get(f"{RULES}/content/cake")
        self.assertEqual((status, rule), (200, {"rule_id": "cake", "default": False, "enabled": True,
                                                "actions": ["notify"], "pattern": "cake"}))
        # New rules without before/after become the most important of their kind.
        await self.put_content_rule("pie", "pie")
        self.assertEqual(ids((await self.get(f"{RULES}/content/"))[1]), ["pie", "cake"])
        await self.put_content_rule("cakelie", "cake*lie", before="cake")
        self.assertEqual(ids((await self.get(f"{RULES}/content/"))[1]), ["pie", "cakelie", "cake"])
        await self.put_content_rule("tart", "tart", after="pie")
        self.assertEqual(ids((await self.get(f"{RULES}/content/"))[1]), ["pie", "tart", "cakelie", "cake"])
        await self.put_content_rule("last", "last", after="cake")
        self.assertEqual(ids((await self.get(f"{RULES}/content/"))[1]), ["pie", "tart", "cakelie", "cake", "last"])
        # Moving an existing rule; before wins over after.
        await self.put_content_rule("pie", "pie", before="last", after="tart")
        self.assertEqual(ids((await self.get(f"{RULES}/content/"))[1]), ["tart", "cakelie", "cake", "pie", "last"])
        # Updating without before/after keeps the place, and the enabled flag.
        status, _ = await self.put(f"{RULES}/content/cake/enabled", {"enabled": False})
        self.assertEqual(status, 200)
        status, _ = await self.put(f"{RULES}/content/cake", {"pattern": "gateau", "actions": []})
        self.assertEqual(status, 200)
        content = (await self.get(f"{RULES}/content/"))[1]
        self.assertEqual(ids(content), ["tart", "cakelie", "cake", "pie", "last"])
        self.assertEqual(content[2], {"rule_id": "cake", "default": False, "enabled": False, "actions": [],
                                      "pattern": "gateau"})
        # The order is what the evaluator uses.
        evaluator = await self.hs.push_rules.evaluator_for_user(self.user_id)
        event = {"type": "m.room.message", "sender": "@bob:test.local", "room_id": "!r:test.local",
                 "content": {"body": "the cake is a lie, have some pie", "msgtype": "m.text"}}
        self.assertEqual(evaluator.evaluate(event, PushContext(self.user_id, member_count=3)).rule_id, "cakelie")

    @inline
    async def test_relative_to_an_unknown_or_predefined_rule(self):
        await self.put_content_rule("cake", "cake")
        self.assertMatrixError(await self.put(f"{RULES}/content/pie", {"pattern": "pie", "actions": []},
                                              query={"before": "nope"}), 400, "M_UNKNOWN")
        self.assertMatrixError(await self.put(f"{RULES}/content/pie", {"pattern": "pie", "actions": []},
                                              query={"after": "nope"}), 400, "M_UNKNOWN")
        self.assertMatrixError(await self.put(f"{RULES}/override/mine", {"conditions": [], "actions": []},
                                              query={"before": ".m.rule.master"}), 400, "M_UNKNOWN")
        # A rule of another kind is not a reference point either.
        self.assertMatrixError(await self.put(f"{RULES}/override/mine", {"conditions": [], "actions": []},
                                              query={"after": "cake"}), 400, "M_UNKNOWN")
        self.assertMatrixError(await self.get(f"{RULES}/content/pie"), 404, "M_NOT_FOUND")
        self.assertEqual(ids((await self.get(f"{RULES}/content/"))[1]), ["cake"])

    @inline
    async def test_override_room_sender_and_underride_rules(self):
        conditions = [{"kind": "event_match", "key": "content.body", "pattern": "beer"},
                      {"kind": "room_member_count", "is": "<=10"}]
        actions = ["notify", {"set_tweak": "sound", "value": "beeroclock.wav"}]
        status, _ = await self.put(f"{RULES}/override/beer", {"conditions": conditions, "actions": actions})
        self.assertEqual(status, 200)
        room_id = "!dj234r78wl45Gh4D:matrix.org"
        status, _ = await self.put(f"{RULES}/room/{quote(room_id, safe='')}", {"actions": []})
        self.assertEqual(status, 200)
        status, _ = await self.put(f"{RULES}/sender/{quote('@spambot:matrix.org', safe='')}", {"actions": []})
        self.assertEqual(status, 200)
        status, _ = await self.put(f"{RULES}/underride/catch_all", {"actions": ["notify"]})
        self.assertEqual(status, 200)
        ruleset = (await self.get(f"{V3}/pushrules/"))[1]["global"]
        # The master rule stays first; the user's overrides come before the other predefined ones.
        self.assertEqual(ids(ruleset["override"]), [OVERRIDE_IDS[0], "beer"] + OVERRIDE_IDS[1:])
        self.assertEqual(ruleset["override"][1], {"rule_id": "beer", "default": False, "enabled": True,
                                                  "actions": actions, "conditions": conditions})
        self.assertEqual(ruleset["room"], [{"rule_id": room_id, "default": False, "enabled": True, "actions": []}])
        self.assertEqual(ids(ruleset["sender"]), ["@spambot:matrix.org"])
        self.assertEqual(ids(ruleset["underride"]), ["catch_all"] + UNDERRIDE_IDS)
        self.assertEqual(ruleset["underride"][0]["conditions"], [])

    @inline
    async def test_predefined_rules_enabled_and_actions(self):
        status, body = await self.get(f"{RULES}/override/.m.rule.master/enabled")
        self.assertEqual((status, body), (200, {"enabled": False}))
        status, _ = await self.put(f"{RULES}/override/.m.rule.master/enabled", {"enabled": True})
        self.assertEqual(status, 200)
        self.assertEqual((await self.get(f"{RULES}/override/.m.rule.master/enabled"))[1], {"enabled": True})
        status, _ = await self.put(f"{RULES}/underride/.m.rule.message/enabled", {"enabled": False})
        self.assertEqual(status, 200)

        status, body = await self.get(f"{RULES}/override/.m.rule.invite_for_me/actions")
        self.assertEqual((status, body), (200, {"actions": ["notify", {"set_tweak": "sound", "value": "default"}]}))
        new_actions = ["notify", {"set_tweak": "highlight"}]
        status, _ = await self.put(f"{RULES}/override/.m.rule.invite_for_me/actions", {"actions": new_actions})
        self.assertEqual(status, 200)
        self.assertEqual((await self.get(f"{RULES}/override/.m.rule.invite_for_me/actions"))[1],
                         {"actions": new_actions})
        # The historical dont_notify is stripped.
        status, _ = await self.put(f"{RULES}/underride/.m.rule.call/actions", {"actions": ["dont_notify"]})
        self.assertEqual(status, 200)
        self.assertEqual((await self.get(f"{RULES}/underride/.m.rule.call/actions"))[1], {"actions": []})

        ruleset = (await self.get(f"{V3}/pushrules/"))[1]["global"]
        self.assertEqual(ids(ruleset["override"]), OVERRIDE_IDS)  # still in place, still default
        invite = ruleset["override"][2]
        self.assertEqual((invite["default"], invite["enabled"], invite["actions"]), (True, True, new_actions))
        message = next(r for r in ruleset["underride"] if r["rule_id"] == ".m.rule.message")
        self.assertFalse(message["enabled"])

        # Changing enabled leaves the changed actions alone, and the other way round.
        status, _ = await self.put(f"{RULES}/override/.m.rule.invite_for_me/enabled", {"enabled": False})
        self.assertEqual(status, 200)
        rule = (await self.get(f"{RULES}/override/.m.rule.invite_for_me"))[1]
        self.assertEqual((rule["enabled"], rule["actions"]), (False, new_actions))

        # The service (what /sync uses) sees the change at once.
        evaluator = await self.hs.push_rules.evaluator_for_user(self.user_id)
        event = {"type": "m.room.message", "sender": "@bob:test.local", "room_id": "!r:test.local",
                 "content": {"body": "hi", "msgtype": "m.text"}}
        self.assertEqual(evaluator.evaluate(event, PushContext(self.user_id)).rule_id, ".m.rule.master")

    @inline
    async def test_custom_rule_enabled_and_actions(self):
        await self.put_content_rule("cake", "cake")
        status, _ = await self.put(f"{RULES}/content/cake/enabled", {"enabled": False})
        self.assertEqual(status, 200)
        self.assertEqual((await self.get(f"{RULES}/content/cake/enabled"))[1], {"enabled": False})
        actions = ["notify", {"set_tweak": "sound", "value": "cakealarm.wav"}]
        status, _ = await self.put(f"{RULES}/content/cake/actions", {"actions": actions})
        self.assertEqual(status, 200)
        self.assertEqual((await self.get(f"{RULES}/content/cake/actions"))[1], {"actions": actions})
        self.assertEqual((await self.get(f"{RULES}/content/cake"))[1],
                         {"rule_id": "cake", "default": False, "enabled": False, "actions": actions,
                          "pattern": "cake"})

    @inline
    async def test_delete(self):
        await self.put_content_rule("cake", "cake")
        await self.put_content_rule("pie", "pie")
        status, body = await self.request("DELETE", f"{RULES}/content/cake", token=self.token)
        self.assertEqual((status, body), (200, {}))
        self.assertMatrixError(await self.get(f"{RULES}/content/cake"), 404, "M_NOT_FOUND")
        self.assertEqual(ids((await self.get(f"{RULES}/content/"))[1]), ["pie"])
        self.assertMatrixError(await self.request("DELETE", f"{RULES}/content/cake", token=self.token),
                               404, "M_NOT_FOUND")
        # Predefined rules cannot be deleted; only the user's own rules exist to delete.
        self.assertMatrixError(await self.request("DELETE", f"{RULES}/override/.m.rule.master", token=self.token),
                               404, "M_NOT_FOUND")
        self.assertEqual(ids((await self.get(f"{RULES}/override/"))[1]), OVERRIDE_IDS)
        # Re-creating a deleted rule makes a new, enabled rule.
        await self.put_content_rule("cake", "cake")
        self.assertEqual((await self.get(f"{RULES}/content/cake/enabled"))[1], {"enabled": True})

    @inline
    async def test_unknown_rules_are_404(self):
        for path in (f"{RULES}/content/nope", f"{RULES}/content/nope/enabled", f"{RULES}/content/nope/actions",
                     f"{RULES}/override/.m.rule.nope", f"{RULES}/content/.m.rule.master",
                     f"{RULES}/room/{quote('!nope:test.local', safe='')}"):
            self.assertMatrixError(await self.get(path), 404, "M_NOT_FOUND")
        self.assertMatrixError(await self.put(f"{RULES}/content/nope/enabled", {"enabled": True}),
                               404, "M_NOT_FOUND")
        self.assertMatrixError(await self.put(f"{RULES}/override/.m.rule.nope/actions", {"actions": []}),
                               404, "M_NOT_FOUND")
        # Another user's rules are not mine.
        await self.put_content_rule("cake", "cake")
        other = await self.register("bob")
        self.assertMatrixError(await self.request("GET", f"{RULES}/content/cake", token=other["access_token"]),
                               404, "M_NOT_FOUND")
        status, body = await self.request("GET", f"{RULES}/", token=other["access_token"])
        self.assertEqual((status, body["content"]), (200, []))

    @inline
    async def test_cannot_add_predefined_rule_ids_or_odd_ids(self):
        self.assertMatrixError(await self.put(f"{RULES}/override/.m.rule.master", {"conditions": [],
                                                                                   "actions": []}),
                               400, "M_INVALID_PARAM")
        self.assertMatrixError(await self.put(f"{RULES}/content/.mine", {"pattern": "x", "actions": []}),
                               400, "M_INVALID_PARAM")
        self.assertMatrixError(await self.put(f"{RULES}/content/a%2Fb", {"pattern": "x", "actions": []}),
                               400, "M_INVALID_PARAM")
        self.assertMatrixError(await self.put(f"{RULES}/content/a%5Cb", {"pattern": "x", "actions": []}),
                               400, "M_INVALID_PARAM")
        self.assertEqual((await self.get(f"{RULES}/content/"))[1], [])

    @inline
    async def test_invalid_bodies(self):
        cases = [
            (f"{RULES}/content/x", {"actions": ["notify"]}, "M_MISSING_PARAM"),
            (f"{RULES}/content/x", {"pattern": 3, "actions": ["notify"]}, "M_INVALID_PARAM"),
            (f"{RULES}/content/x", {"pattern": "x"}, "M_MISSING_PARAM"),
            (f"{RULES}/content/x", {"pattern": "x", "actions": "notify"}, "M_INVALID_PARAM"),
            (f"{RULES}/content/x", {"pattern": "x", "actions": ["explode"]}, "M_INVALID_PARAM"),
            (f"{RULES}/content/x", {"pattern": "x", "actions": [{"value": 1}]}, "M_INVALID_PARAM"),
            (f"{RULES}/content/x", {"pattern": "x", "actions": [{"set_tweak": "highlight", "value": "yes"}]},
             "M_INVALID_PARAM"),
            (f"{RULES}/content/x", {"pattern": "x", "actions": [7]}, "M_INVALID_PARAM"),
            (f"{RULES}/override/x", {"conditions": {}, "actions": []}, "M_INVALID_PARAM"),
            (f"{RULES}/override/x", {"conditions": [{"key": "type"}], "actions": []}, "M_INVALID_PARAM"),
            (f"{RULES}/override/x", {"conditions": ["event_match"], "actions": []}, "M_INVALID_PARAM"),
            (f"{RULES}/override/x", {"conditions": [{"kind": "event_match", "key": "type"}], "actions": []},
             "M_INVALID_PARAM"),
            (f"{RULES}/override/x", {"conditions": [{"kind": "room_member_count", "is": "lots"}], "actions": []},
             "M_INVALID_PARAM"),
            (f"{RULES}/override/x", {"conditions": [{"kind": "event_property_is", "key": "content.x",
                                                     "value": [1]}], "actions": []}, "M_INVALID_PARAM"),
            (f"{RULES}/nonsense/x", {"actions": []}, "M_INVALID_PARAM"),
            (f"{RULES}/content/x/enabled", {}, "M_MISSING_PARAM"),
            (f"{RULES}/content/x/enabled", {"enabled": "yes"}, "M_INVALID_PARAM"),
            (f"{RULES}/underride/.m.rule.message/actions", {}, "M_MISSING_PARAM"),
            (f"{RULES}/underride/.m.rule.message/actions", {"actions": ["explode"]}, "M_INVALID_PARAM"),
            (f"{RULES}/underride/.m.rule.message/actions", {"actions": {"notify": True}}, "M_INVALID_PARAM"),
        ]
        for path, body, errcode in cases:
            self.assertMatrixError(await self.put(path, body), 400, errcode)
        self.assertMatrixError(await self.request("PUT", f"{RULES}/content/x", raw=b"not json", token=self.token),
                               400, "M_NOT_JSON")
        self.assertMatrixError(await self.request("PUT", f"{RULES}/content/x", raw=b"[]", token=self.token),
                               400, "M_BAD_JSON")
        self.assertMatrixError(await self.get(f"{RULES}/nonsense/x"), 400, "M_INVALID_PARAM")
        self.assertMatrixError(await self.get(f"{RULES}/nonsense/"), 400, "M_INVALID_PARAM")
        # Nothing was stored, and the actions of .m.rule.message are unchanged.
        ruleset = (await self.get(f"{V3}/pushrules/"))[1]["global"]
        self.assertEqual(ids(ruleset["override"]), OVERRIDE_IDS)
        self.assertEqual(ruleset["content"], [])
        self.assertEqual((await self.get(f"{RULES}/underride/.m.rule.message/actions"))[1], {"actions": ["notify"]})
        # An unknown condition kind is accepted (it never matches).
        status, _ = await self.put(f"{RULES}/override/future", {"conditions": [{"kind": "org.example.new"}],
                                                                "actions": ["notify"]})
        self.assertEqual(status, 200)

    @inline
    async def test_unknown_paths(self):
        self.assertMatrixError(await self.get(f"{V3}/pushrules/device/"), 404, "M_UNRECOGNIZED")
        self.assertMatrixError(await self.get(f"{RULES}/content/x/pattern"), 404, "M_UNRECOGNIZED")
        self.assertMatrixError(await self.request("POST", f"{RULES}/content/x", {}, token=self.token),
                               405, "M_UNRECOGNIZED")

    @inline
    async def test_change_listener_and_ruleset_json(self):
        changed = []
        self.hs.push_rules.add_change_listener(changed.append)
        await self.put_content_rule("cake", "cake")
        await self.put(f"{RULES}/override/.m.rule.master/enabled", {"enabled": True})
        self.assertEqual(changed, [self.user_id, self.user_id])
        ruleset = await self.hs.push_rules.ruleset_json(self.user_id)
        self.assertEqual(ruleset, (await self.get(f"{V3}/pushrules/"))[1])

    # --- pushers ----------------------------------------------------------------------

    @inline
    async def test_pushers_set_list_delete(self):
        status, body = await self.get(f"{V3}/pushers")
        self.assertEqual((status, body), (200, {"pushers": []}))
        status, body = await self.request("POST", f"{V3}/pushers/set", PUSHER, token=self.token)
        self.assertEqual((status, body), (200, {}))
        status, body = await self.get(f"{V3}/pushers")
        expected = {key: PUSHER[key] for key in ("pushkey", "kind", "app_id", "app_display_name",
                                                 "device_display_name", "profile_tag", "lang", "data")}
        self.assertEqual((status, body), (200, {"pushers": [expected]}))
        # Same app_id and pushkey: updated in place.
        updated = {**PUSHER, "device_display_name": "iPhone 10", "lang": "en-GB"}
        del updated["profile_tag"]
        await self.request("POST", f"{V3}/pushers/set", updated, token=self.token)
        pushers = (await self.get(f"{V3}/pushers"))[1]["pushers"]
        self.assertEqual(len(pushers), 1)
        self.assertEqual((pushers[0]["device_display_name"], pushers[0]["lang"]), ("iPhone 10", "en-GB"))
        self.assertNotIn("profile_tag", pushers[0])
        # Another pushkey: a second pusher.
        await self.request("POST", f"{V3}/pushers/set", {**PUSHER, "pushkey": "other"}, token=self.token)
        self.assertEqual(sorted(p["pushkey"] for p in (await self.get(f"{V3}/pushers"))[1]["pushers"]),
                         sorted([PUSHER["pushkey"], "other"]))
        # kind null deletes (and deleting again is fine).
        for _ in range(2):
            status, body = await self.request("POST", f"{V3}/pushers/set",
                                              {"kind": None, "app_id": PUSHER["app_id"], "pushkey": "other"},
                                              token=self.token)
            self.assertEqual((status, body), (200, {}))
        self.assertEqual([p["pushkey"] for p in (await self.get(f"{V3}/pushers"))[1]["pushers"]],
                         [PUSHER["pushkey"]])

    @inline
    async def test_pushers_append_and_other_users(self):
        await self.request("POST", f"{V3}/pushers/set", PUSHER, token=self.token)
        bob = await self.register("bob")
        # bob's pusher with the same app_id and pushkey, append: alice keeps hers.
        await self.request("POST", f"{V3}/pushers/set", {**PUSHER, "append": True}, token=bob["access_token"])
        self.assertEqual(len((await self.get(f"{V3}/pushers"))[1]["pushers"]), 1)
        self.assertEqual(len((await self.request("GET", f"{V3}/pushers", token=bob["access_token"]))[1]["pushers"]),
                         1)
        # Without append, the pushkey moves to bob.
        await self.request("POST", f"{V3}/pushers/set", PUSHER, token=bob["access_token"])
        self.assertEqual((await self.get(f"{V3}/pushers"))[1], {"pushers": []})
        self.assertEqual(len((await self.request("GET", f"{V3}/pushers", token=bob["access_token"]))[1]["pushers"]),
                         1)

    @inline
    async def test_pusher_validation(self):
        without = lambda name: {k: v for k, v in PUSHER.items() if k != name}  # noqa: E731
        cases = [
            (without("kind"), "M_MISSING_PARAM"),
            (without("app_id"), "M_MISSING_PARAM"),
            (without("pushkey"), "M_MISSING_PARAM"),
            (without("lang"), "M_MISSING_PARAM"),
            (without("data"), "M_MISSING_PARAM"),
            (without("app_display_name"), "M_MISSING_PARAM"),
            (without("device_display_name"), "M_MISSING_PARAM"),
            ({**PUSHER, "data": {"format": "event_id_only"}}, "M_MISSING_PARAM"),
            ({**PUSHER, "data": {"url": 5}}, "M_INVALID_PARAM"),
            ({**PUSHER, "data": {"url": "ftp://push.example.com/_matrix/push/v1/notify"}}, "M_INVALID_PARAM"),
            ({**PUSHER, "data": {"url": "https://push.example.com/notify"}}, "M_INVALID_PARAM"),
            ({**PUSHER, "data": "https://push.example.com/_matrix/push/v1/notify"}, "M_INVALID_PARAM"),
            ({**PUSHER, "kind": "carrier-pigeon"}, "M_INVALID_PARAM"),
            ({**PUSHER, "kind": 3}, "M_INVALID_PARAM"),
            ({**PUSHER, "app_id": "x" * 65}, "M_INVALID_PARAM"),
            ({**PUSHER, "pushkey": "x" * 513}, "M_INVALID_PARAM"),
            ({**PUSHER, "lang": 1}, "M_INVALID_PARAM"),
            ({**PUSHER, "append": "yes"}, "M_INVALID_PARAM"),
        ]
        for body, errcode in cases:
            self.assertMatrixError(await self.request("POST", f"{V3}/pushers/set", body, token=self.token),
                                   400, errcode)
        self.assertEqual((await self.get(f"{V3}/pushers"))[1], {"pushers": []})
        # http:// is accepted (a push gateway on a development machine).
        status, _ = await self.request("POST", f"{V3}/pushers/set",
                                       {**PUSHER, "data": {"url": "http://127.0.0.1:5000/_matrix/push/v1/notify"}},
                                       token=self.token)
        self.assertEqual(status, 200)

    @inline
    async def test_rules_survive_a_restart(self):
        await self.put_content_rule("cake", "cake")
        await self.put_content_rule("pie", "pie", after="cake")
        await self.put(f"{RULES}/override/.m.rule.master/enabled", {"enabled": True})
        await self.request("POST", f"{V3}/pushers/set", PUSHER, token=self.token)
        before = (await self.get(f"{V3}/pushrules/"))[1]
        from homeserver.push.rules import PushRules
        from storage.stores.push_rules import PushRuleStore
        fresh = PushRules(PushRuleStore(self.hs.db), self.hs.clock)  # nothing cached
        self.assertEqual(await fresh.ruleset_json(self.user_id), before)
        self.assertEqual(len(await fresh.get_pushers(self.user_id)), 1)


class PushRulesSqliteTests(PushRulesApiTests, HomeserverTestCase):
    engine = "sqlite"


class PushRulesPostgresTests(PushRulesApiTests, HomeserverTestCase):
    engine = "postgres"
