"""The pure part of the audit log: which state event or redaction makes which entry."""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import count

from twisted.trial import unittest

from homeserver.drocsid import audit_log as log
from homeserver.drocsid import permissions as perms

OWNER, MOD, BOB = "@owner:hs", "@mod:hs", "@bob:hs"
SPACE, CHANNEL = "!space:hs", "!chan:hs"
_ids = count(1)


@dataclass
class FakeEvent:
    type: str
    sender: str
    content: dict = field(default_factory=dict)
    state_key: str | None = ""
    room_id: str = SPACE
    origin_server_ts: int = 1000
    event_id: str = field(default_factory=lambda: f"${next(_ids)}")
    stream_ordering: int = field(default_factory=lambda: next(_ids))


SPACE_INFO = log.RoomInfo(SPACE, True)
CHANNEL_INFO = log.RoomInfo(CHANNEL, False, name="news")


def entry(event, previous=None, room=SPACE_INFO, redacted=None):
    return log.entry_for(event, previous, room, OWNER, redacted)


class ActorTests(unittest.TestCase):
    def test_owner_events_may_name_the_actor(self):
        event = FakeEvent("m.room.member", OWNER, {"membership": "ban", log.ACTOR_FIELD: MOD}, BOB)
        self.assertEqual(log.actor_of(event, OWNER), MOD)

    def test_others_cannot_blame_someone(self):
        event = FakeEvent("m.room.member", BOB, {"membership": "ban", log.ACTOR_FIELD: MOD}, "@x:hs")
        self.assertEqual(log.actor_of(event, OWNER), BOB)
        event = FakeEvent("m.room.member", OWNER, {"membership": "ban", log.ACTOR_FIELD: "nobody"}, BOB)
        self.assertEqual(log.actor_of(event, OWNER), OWNER)


class MembershipTests(unittest.TestCase):
    def test_ban_kick_unban(self):
        joined = FakeEvent("m.room.member", BOB, {"membership": "join"}, BOB)
        ban = FakeEvent("m.room.member", OWNER, {"membership": "ban", "reason": "spam", log.ACTOR_FIELD: MOD}, BOB,
                        origin_server_ts=5)
        got = entry(ban, joined)
        self.assertEqual((got.id, got.action, got.user_id, got.target_id, got.reason, got.changes, got.created_ts,
                          got.channel_id), (ban.event_id, "member_ban", MOD, BOB, "spam", [], 5, None))
        unban = FakeEvent("m.room.member", MOD, {"membership": "leave"}, BOB)
        self.assertEqual(entry(unban, ban).action, "member_unban")
        kick = FakeEvent("m.room.member", MOD, {"membership": "leave", "reason": "bye"}, BOB)
        self.assertEqual((entry(kick, joined).action, entry(kick, joined).reason), ("member_kick", "bye"))

    def test_not_moderation(self):
        joined = FakeEvent("m.room.member", BOB, {"membership": "join"}, BOB)
        self.assertIsNone(entry(joined))
        self.assertIsNone(entry(FakeEvent("m.room.member", BOB, {"membership": "leave"}, BOB), joined))
        self.assertIsNone(entry(FakeEvent("m.room.member", OWNER, {"membership": "invite"}, BOB)))
        # Bans in channel rooms repeat the space's.
        ban = FakeEvent("m.room.member", OWNER, {"membership": "ban"}, BOB, room_id=CHANNEL)
        self.assertIsNone(entry(ban, joined, CHANNEL_INFO))


class StateTests(unittest.TestCase):
    def test_server_update(self):
        old = FakeEvent("m.room.name", OWNER, {"name": "A"})
        new = FakeEvent("m.room.name", MOD, {"name": "B"})
        got = entry(new, old)
        self.assertEqual((got.action, got.target_id, got.changes),
                         ("server_update", SPACE, [{"key": "name", "old": "A", "new": "B"}]))
        self.assertIsNone(entry(FakeEvent("m.room.name", MOD, {"name": "A"}), old))
        icon = entry(FakeEvent("m.room.avatar", OWNER, {"url": "mxc://a/b"}))
        self.assertEqual(icon.changes, [{"key": "icon_url", "old": None, "new": "mxc://a/b"}])

    def test_roles(self):
        created = FakeEvent(perms.ROLE_EVENT, OWNER, {"name": "mods", "permissions": "2", "position": 1}, "r1")
        got = entry(created)
        self.assertEqual((got.action, got.target_id), ("role_create", "r1"))
        self.assertIn({"key": "name", "old": None, "new": "mods"}, got.changes)
        updated = FakeEvent(perms.ROLE_EVENT, OWNER, {"name": "mods", "permissions": "6", "position": 1}, "r1")
        self.assertEqual((entry(updated, created).action, entry(updated, created).changes),
                         ("role_update", [{"key": "permissions", "old": "2", "new": "6"}]))
        deleted = FakeEvent(perms.ROLE_EVENT, OWNER, {}, "r1")
        self.assertEqual(entry(deleted, updated).action, "role_delete")
        self.assertIsNone(entry(FakeEvent(perms.ROLE_EVENT, OWNER, {}, "r2")))

    def test_member_roles(self):
        key = perms.member_state_key(BOB)
        old = FakeEvent(perms.MEMBER_EVENT, OWNER, {"roles": ["a", "b"]}, key)
        new = FakeEvent(perms.MEMBER_EVENT, OWNER, {"roles": ["b", "c"]}, key)
        got = entry(new, old)
        self.assertEqual((got.action, got.target_id, got.changes), ("member_role_update", BOB, [
            {"key": "$add", "old": None, "new": ["c"]}, {"key": "$remove", "old": None, "new": ["a"]}]))
        self.assertIsNone(entry(FakeEvent(perms.MEMBER_EVENT, OWNER, {"roles": ["a", "b"]}, key), old))

    def test_channel_changes(self):
        create = FakeEvent("m.room.create", MOD, {"type": "io.drocsid.voice"}, room_id=CHANNEL)
        got = entry(create, room=log.RoomInfo(CHANNEL, False, frozenset({create.event_id}), "news",
                                              "io.drocsid.voice"))
        self.assertEqual((got.action, got.user_id, got.target_id, got.channel_id), ("channel_create", MOD, CHANNEL,
                                                                                    CHANNEL))
        self.assertEqual(got.changes, [{"key": "name", "old": None, "new": "news"},
                                       {"key": "type", "old": None, "new": "voice"}])
        topic = FakeEvent("m.room.topic", MOD, {"topic": "t"}, room_id=CHANNEL)
        self.assertEqual(entry(topic, None, CHANNEL_INFO).action, "channel_update")
        deleted = FakeEvent(log.DELETED_EVENT, OWNER, {"deleted_by": MOD}, room_id=CHANNEL)
        got = entry(deleted, None, CHANNEL_INFO)
        self.assertEqual((got.action, got.user_id), ("channel_delete", MOD))
        overwrite = FakeEvent(perms.OVERWRITE_EVENT, OWNER, {"type": "member", "allow": "1024", "deny": "0"},
                              perms.member_state_key(BOB), room_id=CHANNEL)
        got = entry(overwrite, None, CHANNEL_INFO)
        self.assertEqual((got.action, got.changes[0]), ("overwrite_update", {"key": "id", "old": None, "new": BOB}))

    def test_reordering_is_a_channel_update(self):
        old = FakeEvent("m.space.child", OWNER, {"via": ["hs"], "order": "000001"}, CHANNEL)
        new = FakeEvent("m.space.child", OWNER, {"via": ["hs"], "order": "000002"}, CHANNEL)
        self.assertEqual(entry(new, old).action, "channel_update")
        # Links appearing or going are not (creation and deletion have their own entries).
        self.assertIsNone(entry(old))
        self.assertIsNone(entry(FakeEvent("m.space.child", OWNER, {}, CHANNEL), old))

    def test_creation_events_are_not_entries(self):
        events = [FakeEvent("m.room.create", OWNER, {}, room_id=CHANNEL),
                  FakeEvent("m.room.member", OWNER, {"membership": "join"}, OWNER, room_id=CHANNEL),
                  FakeEvent("m.room.name", OWNER, {"name": "news"}, room_id=CHANNEL),
                  FakeEvent("m.room.name", OWNER, {"name": "renamed"}, room_id=CHANNEL)]
        info = log.creation_events(events)
        self.assertEqual(info.creation, frozenset(e.event_id for e in events[:3]))
        self.assertEqual(info.name, "news")
        room = log.RoomInfo(CHANNEL, False, info.creation, info.name)
        self.assertIsNone(entry(events[2], None, room))
        self.assertEqual(entry(events[3], events[2], room).action, "channel_update")
        self.assertEqual(entry(events[0], None, room).action, "channel_create")
        self.assertIsNone(log.creation_events(events[1:]))
        # What comes after the room was linked into its server is not creation.
        info = log.creation_events(events[:3], made_before=events[2].stream_ordering)
        self.assertEqual(info.creation, frozenset(e.event_id for e in events[:2]))


class MessageTests(unittest.TestCase):
    def test_redactions(self):
        message = FakeEvent("m.room.message", BOB, {}, None, room_id=CHANNEL)
        redaction = FakeEvent("m.room.redaction", MOD, {"reason": "ad"}, None, room_id=CHANNEL)
        got = entry(redaction, None, CHANNEL_INFO, message)
        self.assertEqual((got.action, got.user_id, got.target_id, got.reason, got.changes),
                         ("message_delete", MOD, BOB, "ad", [{"key": "message_id", "old": message.event_id,
                                                               "new": None}]))
        # Deleting one's own message, or a reaction, is not moderation.
        own = FakeEvent("m.room.redaction", BOB, {}, None, room_id=CHANNEL)
        self.assertIsNone(entry(own, None, CHANNEL_INFO, message))
        reaction = FakeEvent("m.reaction", BOB, {}, None, room_id=CHANNEL)
        self.assertIsNone(entry(redaction, None, CHANNEL_INFO, reaction))

    def test_pins(self):
        old = FakeEvent("m.room.pinned_events", MOD, {"pinned": ["$a"]}, room_id=CHANNEL)
        new = FakeEvent("m.room.pinned_events", MOD, {"pinned": ["$a", "$b"]}, room_id=CHANNEL)
        self.assertEqual((entry(new, old, CHANNEL_INFO).action, entry(new, old, CHANNEL_INFO).target_id),
                         ("message_pin", "$b"))
        self.assertEqual((entry(old, new, CHANNEL_INFO).action, entry(old, new, CHANNEL_INFO).target_id),
                         ("message_unpin", "$b"))


class QueryTests(unittest.TestCase):
    def test_filters_and_limit(self):
        def make(action, user):
            return log.AuditEntry(f"${next(_ids)}", action, user, None, None, [], 0, None)
        query = log.AuditQuery(action="member_ban", user_id=MOD, limit=2)
        self.assertFalse(query.add(make("member_ban", BOB)))
        self.assertFalse(query.add(make("member_kick", MOD)))
        self.assertFalse(query.add(None))
        self.assertFalse(query.add(make("member_ban", MOD)))
        self.assertTrue(query.add(make("member_ban", MOD)))
        self.assertEqual(len(query.entries), 2)
        self.assertEqual(query.entries[0].to_json()["created_at"], "1970-01-01T00:00:00.000Z")
