"""The pure Drocsid rules for one event in a server's rooms (homeserver.drocsid.event_rules)."""

from __future__ import annotations

from twisted.trial import unittest

from homeserver.drocsid.event_rules import EventFacts, ServerFacts, check_event
from homeserver.drocsid.permissions import (ALL, DEFAULT_EVERYONE, Permission as P, Role, member_state_key,
                                            overwrites_from_state)

OWNER, MOD, ALICE, BOB = "@owner:a", "@mod:a", "@alice:b", "@bob:a"
ROLES = {
    "": Role("", "@everyone", DEFAULT_EVERYONE),
    "mod": Role("mod", "Mod", int(P.MANAGE_ROLES | P.KICK_MEMBERS | P.BAN_MEMBERS | P.MANAGE_MESSAGES
                                  | P.MANAGE_NICKNAMES | P.MANAGE_CHANNELS), position=5),
    "helper": Role("helper", "Helper", int(P.MANAGE_MESSAGES), position=2),
    "admin": Role("admin", "Admin", int(P.ADMINISTRATOR), position=9),
}
SERVER = ServerFacts(OWNER, ROLES, {MOD: ("mod",), BOB: ("helper",)})


def message(sender, body="hi", **content):
    return EventFacts("m.room.message", sender, {"msgtype": "m.text", "body": body, **content})


def everyone_denies(bits):
    return overwrites_from_state({"": {"type": "role", "deny": str(int(bits))}})


class MessageRulesTest(unittest.TestCase):
    def test_members_may_talk_by_default(self):
        self.assertIsNone(check_event(SERVER, message(ALICE), {}))

    def test_missing_send_messages_is_refused(self):
        reason = check_event(SERVER, message(ALICE), everyone_denies(P.SEND_MESSAGES))
        self.assertIn("SEND_MESSAGES", reason)
        # The owner is never refused, whatever the overwrites say.
        self.assertIsNone(check_event(SERVER, message(OWNER), everyone_denies(P.SEND_MESSAGES | P.VIEW_CHANNEL)))

    def test_attachments_and_mass_mentions_need_their_bits(self):
        image = EventFacts("m.room.message", ALICE, {"msgtype": "m.image", "body": "x.png", "url": "mxc://a/b"})
        self.assertIn("ATTACH_FILES", check_event(SERVER, image, everyone_denies(P.ATTACH_FILES)))
        self.assertIn("MENTION_EVERYONE", check_event(SERVER, message(ALICE, "@everyone look"),
                                                      everyone_denies(P.MENTION_EVERYONE)))
        self.assertIsNone(check_event(SERVER, message(ALICE, "@everyone look"), {}))

    def test_reactions(self):
        reaction = EventFacts("m.reaction", ALICE, {"m.relates_to": {"rel_type": "m.annotation"}})
        self.assertIn("ADD_REACTIONS", check_event(SERVER, reaction, everyone_denies(P.ADD_REACTIONS)))

    def test_redacting_others_needs_manage_messages(self):
        own = EventFacts("m.room.redaction", ALICE, {}, redacted_sender=ALICE)
        other = EventFacts("m.room.redaction", ALICE, {}, redacted_sender=BOB)
        self.assertIsNone(check_event(SERVER, own, {}))
        self.assertIn("MANAGE_MESSAGES", check_event(SERVER, other, {}))
        by_helper = EventFacts("m.room.redaction", BOB, {}, redacted_sender=ALICE)
        self.assertIsNone(check_event(SERVER, by_helper, {}))

    def test_joining_a_channel_needs_view_channel(self):
        join = EventFacts("m.room.member", ALICE, {"membership": "join"}, ALICE)
        self.assertIn("VIEW_CHANNEL", check_event(SERVER, join, everyone_denies(P.VIEW_CHANNEL)))
        self.assertIsNone(check_event(SERVER, join, {}))


class ModerationRulesTest(unittest.TestCase):
    def kick(self, sender, target, prior="join"):
        return EventFacts("m.room.member", sender, {"membership": "leave"}, target, {"membership": prior})

    def test_kick_needs_the_bit_and_a_lower_target(self):
        self.assertIsNone(check_event(SERVER, self.kick(MOD, BOB), None))
        self.assertIn("KICK_MEMBERS", check_event(SERVER, self.kick(BOB, ALICE), None))
        self.assertIsNotNone(check_event(SERVER, self.kick(MOD, OWNER), None))
        equal = ServerFacts(OWNER, ROLES, {MOD: ("mod",), BOB: ("mod",)})
        self.assertIsNotNone(check_event(equal, self.kick(MOD, BOB), None))

    def test_ban_and_unban(self):
        ban = EventFacts("m.room.member", MOD, {"membership": "ban"}, BOB, {"membership": "join"})
        self.assertIsNone(check_event(SERVER, ban, None))
        self.assertIn("BAN_MEMBERS", check_event(SERVER, EventFacts("m.room.member", BOB, {"membership": "ban"},
                                                                    ALICE), None))
        unban_by_kicker = ServerFacts(OWNER, {**ROLES, "k": Role("k", "K", int(P.KICK_MEMBERS), position=4)},
                                      {ALICE: ("k",)})
        self.assertIn("BAN_MEMBERS", check_event(unban_by_kicker, self.kick(ALICE, BOB, prior="ban"), None))

    def test_leaving_is_always_allowed(self):
        self.assertIsNone(check_event(SERVER, self.kick(ALICE, ALICE), None))


class RoleRulesTest(unittest.TestCase):
    def role(self, sender, role_id, content, prior=None):
        return EventFacts("io.drocsid.role", sender, content, role_id, prior)

    def test_manage_roles_cannot_grant_administrator(self):
        new = {"name": "Boss", "permissions": str(int(P.ADMINISTRATOR)), "position": 1}
        self.assertIsNotNone(check_event(SERVER, self.role(MOD, "boss", new), None))
        self.assertIsNone(check_event(SERVER, self.role(OWNER, "boss", new), None))

    def test_hierarchy_on_create_edit_and_delete(self):
        low = {"name": "Low", "permissions": str(int(P.MANAGE_MESSAGES)), "position": 1}
        self.assertIsNone(check_event(SERVER, self.role(MOD, "low", low), None))
        high = {**low, "position": 7}
        self.assertIsNotNone(check_event(SERVER, self.role(MOD, "low", high), None))
        admin = {"name": "Admin", "permissions": str(int(P.ADMINISTRATOR)), "position": 9}
        self.assertIsNotNone(check_event(SERVER, self.role(MOD, "admin", {}, admin), None))
        self.assertIsNone(check_event(SERVER, self.role(MOD, "helper", {}, {"name": "Helper", "position": 2}), None))

    def test_everyone_can_be_edited_not_deleted(self):
        everyone = {"name": "@everyone", "permissions": str(DEFAULT_EVERYONE)}
        self.assertIsNotNone(check_event(SERVER, self.role(MOD, "", {}, everyone), None))
        fewer = {**everyone, "permissions": str(DEFAULT_EVERYONE & ~P.SEND_MESSAGES)}
        self.assertIsNone(check_event(SERVER, self.role(MOD, "", fewer, everyone), None))

    def test_plain_members_cannot_touch_roles(self):
        self.assertIn("MANAGE_ROLES", check_event(SERVER, self.role(ALICE, "x", {"name": "x", "position": 0}), None))


class MemberRulesTest(unittest.TestCase):
    def member(self, sender, user_id, content, prior=None):
        return EventFacts("io.drocsid.member", sender, content, member_state_key(user_id), prior)

    def test_assigning_roles_follows_the_hierarchy(self):
        self.assertIsNone(check_event(SERVER, self.member(MOD, ALICE, {"roles": ["helper"]}), None))
        self.assertIsNotNone(check_event(SERVER, self.member(MOD, ALICE, {"roles": ["admin"]}), None))
        self.assertIsNotNone(check_event(SERVER, self.member(MOD, MOD, {"roles": ["mod", "admin"]}, {"roles": ["mod"]}),
                                         None))
        self.assertIn("MANAGE_ROLES", check_event(SERVER, self.member(ALICE, ALICE, {"roles": ["helper"]}), None))

    def test_nicknames(self):
        self.assertIsNone(check_event(SERVER, self.member(ALICE, ALICE, {"nick": "Al"}), None))
        self.assertIn("MANAGE_NICKNAMES", check_event(SERVER, self.member(ALICE, BOB, {"nick": "B"}), None))
        self.assertIsNone(check_event(SERVER, self.member(MOD, BOB, {"roles": ["helper"], "nick": "B"},
                                                          {"roles": ["helper"]}), None))
        no_nick = ServerFacts(OWNER, {**ROLES, "": Role("", "", DEFAULT_EVERYONE & ~P.CHANGE_NICKNAME)}, {})
        self.assertIn("CHANGE_NICKNAME", check_event(no_nick, self.member(ALICE, ALICE, {"nick": "Al"}), None))

    def test_bare_user_keys_are_refused(self):
        facts = EventFacts("io.drocsid.member", MOD, {"roles": ["helper"]}, ALICE)
        self.assertIsNotNone(check_event(SERVER, facts, None))


class OverwriteRulesTest(unittest.TestCase):
    def test_only_bits_one_holds(self):
        content = {"type": "role", "allow": "0", "deny": str(int(P.SEND_MESSAGES))}
        facts = EventFacts("io.drocsid.overwrite", MOD, content, "")
        self.assertIsNone(check_event(SERVER, facts, {}))
        granting = EventFacts("io.drocsid.overwrite", MOD, {"type": "role", "allow": str(int(P.MANAGE_WEBHOOKS))}, "")
        self.assertIn("MANAGE_WEBHOOKS", check_event(SERVER, granting, {}))
        self.assertIn("MANAGE_ROLES", check_event(SERVER, EventFacts("io.drocsid.overwrite", ALICE, content, ""), {}))
        self.assertIsNone(check_event(SERVER, EventFacts("io.drocsid.overwrite", OWNER, {"type": "role",
                                                                                        "allow": str(ALL)}, ""), {}))


class DeletionRulesTest(unittest.TestCase):
    def test_only_the_owner_deletes_a_server(self):
        self.assertIsNotNone(check_event(SERVER, EventFacts("io.drocsid.deleted", MOD, {}, ""), None))
        self.assertIsNone(check_event(SERVER, EventFacts("io.drocsid.deleted", OWNER, {}, ""), None))
        self.assertIsNone(check_event(SERVER, EventFacts("io.drocsid.deleted", MOD, {}, ""), {}))
        self.assertIn("MANAGE_CHANNELS", check_event(SERVER, EventFacts("io.drocsid.deleted", ALICE, {}, ""), {}))
