"""Drocsid permissions: bit values, parsing, the Discord algorithm over room state, the
role hierarchy, the power-level mirror and which bit an event needs."""

from __future__ import annotations

from hypothesis import given, settings, strategies as st
from twisted.trial import unittest

from homeserver.drocsid.permissions import (
    ADMIN_LEVEL, ALL, CALL_MEMBER_EVENT, CHANNEL_SCOPED, DEFAULT_EVERYONE, EVERYONE, MODERATOR_LEVEL, SERVER_ONLY,
    SPEAKER_LEVEL, MemberRoles, Overwrite, Permission as P, Role, can_assign_roles, can_edit_role,
    can_grant, can_manage_role, can_moderate, channel_permissions, format_permissions,
    has_permissions, highest_position, member_roles_from_state, member_state_key, overwrites_from_state,
    parse_member_roles, parse_overwrite, user_of_state_key,
    parse_permissions, parse_role, power_levels_mirror, required_permission, roles_from_state,
    server_permissions,
)

OWNER = "@owner:a.test"
ADMIN = "@admin:a.test"
MOD = "@mod:b.test"
ALICE = "@alice:a.test"
BOB = "@bob:c.test"

SPEC_BITS = {
    "CREATE_INSTANT_INVITE": 1, "KICK_MEMBERS": 2, "BAN_MEMBERS": 4, "ADMINISTRATOR": 8,
    "MANAGE_CHANNELS": 16, "MANAGE_SERVER": 32, "ADD_REACTIONS": 64, "VIEW_AUDIT_LOG": 128,
    "VIEW_CHANNEL": 1024, "SEND_MESSAGES": 2048, "MANAGE_MESSAGES": 8192, "EMBED_LINKS": 16384,
    "ATTACH_FILES": 32768, "READ_MESSAGE_HISTORY": 65536, "MENTION_EVERYONE": 131072,
    "USE_EXTERNAL_EMOJIS": 262144, "CONNECT": 1048576, "SPEAK": 2097152, "MUTE_MEMBERS": 4194304,
    "DEAFEN_MEMBERS": 8388608, "MOVE_MEMBERS": 16777216, "CHANGE_NICKNAME": 67108864,
    "MANAGE_NICKNAMES": 134217728, "MANAGE_ROLES": 268435456, "MANAGE_WEBHOOKS": 536870912,
    "MANAGE_EXPRESSIONS": 1073741824, "MANAGE_THREADS": 17179869184,
    "SEND_MESSAGES_IN_THREADS": 274877906944, "MODERATE_MEMBERS": 1099511627776,
    "USE_SOUNDBOARD": 4398046511104, "MANAGE_SOUNDBOARD": 8796093022208,
    "STREAM": 512,  # not in the original's list: Discord's screen-share bit, for voice
}


def role(role_id, permissions=0, position=1, name=None):
    return Role(role_id, name or role_id or "@everyone", int(permissions), 0 if role_id == "" else position)


def server(everyone=DEFAULT_EVERYONE, **extra):
    """@everyone plus an admin role (10), a moderator role (5) and a plain role (1)."""
    roles = {
        EVERYONE: role(EVERYONE, everyone),
        "admin": role("admin", P.ADMINISTRATOR, 10),
        "mod": role("mod", P.KICK_MEMBERS | P.BAN_MEMBERS | P.MANAGE_MESSAGES | P.MANAGE_ROLES
                    | P.MANAGE_NICKNAMES, 5),
        "plain": role("plain", P.EMBED_LINKS, 1),
    }
    roles.update(extra)
    return roles


def ow(target, kind="role", allow=0, deny=0):
    return Overwrite(target, kind, int(allow), int(deny))


def chan(roles, role_ids, user, overwrites, owner=OWNER):
    return channel_permissions(owner, roles, role_ids, user, overwrites)


class BitsTest(unittest.TestCase):
    def test_every_bit_has_the_spec_value(self):
        self.assertEqual({p.name: int(p) for p in P}, SPEC_BITS)

    def test_all_and_default(self):
        self.assertEqual(ALL, 14587822337279 | 512)  # the original's bits and STREAM
        self.assertEqual(ALL, sum(SPEC_BITS.values()))
        self.assertEqual(DEFAULT_EVERYONE, 4398117276737 | 512)
        self.assertFalse(DEFAULT_EVERYONE & P.SEND_MESSAGES_IN_THREADS)

    def test_scopes_partition_all(self):
        self.assertEqual(SERVER_ONLY | CHANNEL_SCOPED, ALL)
        self.assertEqual(SERVER_ONLY & CHANNEL_SCOPED, 0)
        self.assertTrue(CHANNEL_SCOPED & P.VIEW_CHANNEL)
        self.assertTrue(SERVER_ONLY & P.BAN_MEMBERS)


class ParseTest(unittest.TestCase):
    def test_accepts_ints_and_decimal_strings(self):
        self.assertEqual(parse_permissions(0), 0)
        self.assertEqual(parse_permissions("0"), 0)
        self.assertEqual(parse_permissions("14587822337791"), ALL)
        self.assertEqual(parse_permissions(ALL), ALL)
        self.assertEqual(parse_permissions(P.SEND_MESSAGES), 2048)
        self.assertEqual(parse_permissions("0002048"), 2048)

    def test_refuses_garbage(self):
        for bad in (-1, "-1", "+8", " 8", "8 ", "0x10", "1e3", "8.0", 8.0, "", None, [], {}, True,
                    False, "١٢", "9" * 21, str(1 << 63), 1 << 12, 1 << 44, (ALL + 1) << 50):
            with self.assertRaises(ValueError, msg=repr(bad)):
                parse_permissions(bad)

    def test_format_round_trips(self):
        self.assertEqual(format_permissions(DEFAULT_EVERYONE), "4398117277249")
        self.assertEqual(parse_permissions(format_permissions(ALL)), ALL)
        self.assertIsInstance(format_permissions(P.VIEW_CHANNEL), str)
        self.assertEqual(format_permissions(P.VIEW_CHANNEL), "1024")
        with self.assertRaises(ValueError):
            format_permissions(1 << 60)

    @settings(database=None, deadline=None)
    @given(st.integers(min_value=0, max_value=ALL).map(lambda b: b & ALL))
    def test_round_trip_property(self, bits):
        self.assertEqual(parse_permissions(format_permissions(bits)), bits)


class StateShapesTest(unittest.TestCase):
    def test_role(self):
        r = parse_role("r1", {"name": "Mods", "permissions": "8198", "position": 3, "color": 0xFF0000,
                              "hoist": True, "mentionable": True})
        self.assertEqual(r, Role("r1", "Mods", 8198, 3, 0xFF0000, True, True))
        self.assertFalse(r.is_everyone)

    def test_everyone_is_position_zero(self):
        r = parse_role("", {"permissions": str(DEFAULT_EVERYONE), "position": 7})
        self.assertEqual((r.position, r.permissions), (0, DEFAULT_EVERYONE))
        self.assertTrue(r.is_everyone)

    def test_deleted_or_non_object_role_is_absent(self):
        for content in ({}, None, [], "x", 5):
            self.assertIsNone(parse_role("r1", content))

    def test_malformed_role_grants_nothing(self):
        for perms in ("-8", "garbage", -8, None, 8.0, True, [8], "9" * 30):
            r = parse_role("r1", {"name": "x", "permissions": perms, "position": 2})
            self.assertEqual(r.permissions, 0, perms)
        r = parse_role("r1", {"name": 5, "position": "9", "color": -1, "hoist": "yes", "mentionable": 1})
        self.assertEqual(r, Role("r1", "", 0, 0, 0, False, False))
        self.assertEqual(parse_role("r1", {"position": -5}).position, 0)
        self.assertEqual(parse_role("r1", {"position": True}).position, 0)

    def test_unknown_bits_in_state_are_masked(self):
        r = parse_role("r1", {"permissions": str(int(P.SEND_MESSAGES) | 1 << 50)})
        self.assertEqual(r.permissions, P.SEND_MESSAGES)

    def test_roles_from_state_skips_deleted(self):
        roles = roles_from_state({"": {"permissions": "1024"}, "gone": {}, "bad": "x", "r": {"position": 2}})
        self.assertEqual(sorted(roles), ["", "r"])

    def test_member_roles(self):
        self.assertEqual(parse_member_roles(ALICE, {"roles": ["b", "a", "a", 5, None, ""]}),
                         MemberRoles(ALICE, ("a", "b")))
        for content in ({}, None, {"roles": "a"}, {"roles": {"a": 1}}, []):
            self.assertEqual(parse_member_roles(ALICE, content), MemberRoles(ALICE, ()))

    def test_overwrite(self):
        self.assertEqual(parse_overwrite("r1", {"type": "role", "allow": "2048", "deny": "1024"}),
                         Overwrite("r1", "role", 2048, 1024))
        self.assertEqual(parse_overwrite(member_state_key(ALICE), {"type": "member", "allow": 64}),
                         Overwrite(ALICE, "member", 64, 0))
        self.assertEqual(parse_overwrite("", {"type": "role", "deny": "1024"}), Overwrite("", "role", 0, 1024))

    def test_absent_overwrites(self):
        for target, content in (("r1", {}), ("r1", None), ("r1", {"type": "user"}), ("r1", {"type": "member"}),
                                (ALICE, {"type": "role", "deny": "1024"}), ("r1", []), ("", {"type": None}),
                                # A bare user ID is not a member key (only its user could send it).
                                (ALICE, {"type": "member", "allow": 64}),
                                ("member:", {"type": "role"}), ("member:x", {"type": "member"}),
                                (member_state_key(ALICE), {"type": "role", "deny": "1"})):
            self.assertIsNone(parse_overwrite(target, content), (target, content))

    def test_malformed_overwrite_fails_closed(self):
        o = parse_overwrite("r1", {"type": "role", "allow": "lots", "deny": "-1"})
        self.assertEqual((o.allow, o.deny), (0, ALL & ~P.ADMINISTRATOR))

    def test_overwrites_cannot_touch_administrator(self):
        o = parse_overwrite("r1", {"type": "role", "allow": str(ALL), "deny": "8"})
        self.assertEqual((o.allow, o.deny), (ALL & ~P.ADMINISTRATOR, 0))

    def test_overwrites_from_state(self):
        ows = overwrites_from_state({"": {"type": "role", "deny": "2048"}, "gone": {},
                                     member_state_key(BOB): {"type": "member"}})
        self.assertEqual(sorted(ows), ["", BOB])

    def test_member_state_keys(self):
        self.assertEqual(member_state_key(ALICE), "member:" + ALICE)
        self.assertEqual(user_of_state_key(member_state_key(ALICE)), ALICE)
        for key in (ALICE, "member:", "member:x", "", None, 5):
            self.assertIsNone(user_of_state_key(key))
        self.assertEqual(member_roles_from_state({member_state_key(ALICE): {"roles": ["r"]}, BOB: {"roles": ["r"]}}),
                         {ALICE: ("r",)})


class ServerPermissionsTest(unittest.TestCase):
    def test_owner_gets_all(self):
        self.assertEqual(server_permissions(OWNER, {}, [], OWNER), ALL)

    def test_no_owner_means_nobody_is_owner(self):
        self.assertEqual(server_permissions(None, {}, [], ""), 0)
        self.assertEqual(server_permissions("", {}, [], ""), 0)

    def test_everyone_only(self):
        self.assertEqual(server_permissions(OWNER, server(), [], ALICE), DEFAULT_EVERYONE)

    def test_no_everyone_role_means_zero(self):
        self.assertEqual(server_permissions(OWNER, {}, [], ALICE), 0)

    def test_roles_are_ored(self):
        roles = server(everyone=P.VIEW_CHANNEL, a=role("a", P.SEND_MESSAGES), b=role("b", P.ADD_REACTIONS))
        self.assertEqual(server_permissions(OWNER, roles, ["a", "b"], ALICE),
                         P.VIEW_CHANNEL | P.SEND_MESSAGES | P.ADD_REACTIONS)

    def test_deleted_roles_count_for_nothing(self):
        self.assertEqual(server_permissions(OWNER, server(everyone=0), ["gone"], ALICE), 0)

    def test_administrator_gives_all(self):
        self.assertEqual(server_permissions(OWNER, server(), ["admin"], ADMIN), ALL)
        self.assertEqual(server_permissions(OWNER, server(everyone=P.ADMINISTRATOR), [], ALICE), ALL)


class ChannelPermissionsTest(unittest.TestCase):
    def test_no_overwrites_is_server_permissions(self):
        self.assertEqual(chan(server(), ["plain"], ALICE, {}), DEFAULT_EVERYONE | P.EMBED_LINKS)

    def test_owner_and_admin_skip_overwrites(self):
        deny_all = {"": ow("", deny=ALL), ADMIN: ow(ADMIN, "member", deny=ALL), OWNER: ow(OWNER, "member", deny=ALL)}
        self.assertEqual(chan(server(), ["admin"], ADMIN, deny_all), ALL)
        self.assertEqual(chan(server(), [], OWNER, deny_all), ALL)

    def test_everyone_overwrite_deny_and_allow(self):
        ows = {"": ow("", allow=P.MANAGE_MESSAGES, deny=P.SEND_MESSAGES)}
        bits = chan(server(), [], ALICE, ows)
        self.assertFalse(bits & P.SEND_MESSAGES)
        self.assertTrue(bits & P.MANAGE_MESSAGES)

    def test_everyone_overwrite_must_be_a_role_overwrite(self):
        self.assertEqual(chan(server(), [], ALICE, {"": ow("", "member", deny=ALL)}), DEFAULT_EVERYONE)

    def test_role_overwrite_beats_everyone_overwrite(self):
        ows = {"": ow("", deny=P.VIEW_CHANNEL), "plain": ow("plain", allow=P.VIEW_CHANNEL)}
        self.assertTrue(chan(server(), ["plain"], ALICE, ows) & P.VIEW_CHANNEL)
        self.assertEqual(chan(server(), [], BOB, ows) & P.VIEW_CHANNEL, 0)

    def test_allow_wins_within_the_role_tier(self):
        roles = server(a=role("a"), b=role("b", position=2))
        ows = {"a": ow("a", deny=P.SEND_MESSAGES), "b": ow("b", allow=P.SEND_MESSAGES)}
        self.assertTrue(chan(roles, ["a", "b"], ALICE, ows) & P.SEND_MESSAGES)
        self.assertFalse(chan(roles, ["a"], ALICE, ows) & P.SEND_MESSAGES)

    def test_overwrites_for_roles_not_held_do_not_apply(self):
        ows = {"mod": ow("mod", deny=P.VIEW_CHANNEL)}
        self.assertEqual(chan(server(), [], ALICE, ows), DEFAULT_EVERYONE)

    def test_member_overwrite_applies_last(self):
        ows = {"plain": ow("plain", allow=P.SEND_MESSAGES), ALICE: ow(ALICE, "member", deny=P.SEND_MESSAGES)}
        self.assertFalse(chan(server(), ["plain"], ALICE, ows) & P.SEND_MESSAGES)
        ows = {"": ow("", deny=P.VIEW_CHANNEL), ALICE: ow(ALICE, "member", allow=P.VIEW_CHANNEL)}
        self.assertTrue(chan(server(), [], ALICE, ows) & P.VIEW_CHANNEL)
        self.assertFalse(chan(server(), [], BOB, ows) & P.VIEW_CHANNEL)

    def test_member_overwrite_for_someone_else_does_not_apply(self):
        ows = {BOB: ow(BOB, "member", deny=ALL)}
        self.assertEqual(chan(server(), [], ALICE, ows), DEFAULT_EVERYONE)

    def test_no_view_channel_loses_channel_bits_but_keeps_server_bits(self):
        ows = {"": ow("", deny=P.VIEW_CHANNEL)}
        self.assertEqual(chan(server(), [], ALICE, ows), DEFAULT_EVERYONE & SERVER_ONLY)
        mod = chan(server(), ["mod"], MOD, ows)
        self.assertFalse(mod & P.MANAGE_MESSAGES)
        self.assertTrue(mod & P.BAN_MEMBERS and mod & P.KICK_MEMBERS)
        self.assertEqual(mod & CHANNEL_SCOPED, 0)

    def test_no_send_messages_loses_what_sending_carries(self):
        bits = chan(server(), [], ALICE, {"": ow("", deny=P.SEND_MESSAGES)})
        for bit in (P.MENTION_EVERYONE, P.ATTACH_FILES, P.EMBED_LINKS, P.SEND_MESSAGES):
            self.assertFalse(bits & bit, bit)
        self.assertTrue(bits & P.ADD_REACTIONS and bits & P.VIEW_CHANNEL and bits & P.READ_MESSAGE_HISTORY)

    def test_malformed_overwrites_fail_closed(self):
        ows = overwrites_from_state({"": {"type": "role", "allow": "x", "deny": "y"}})
        self.assertEqual(chan(server(), [], ALICE, ows), 0)
        ows = overwrites_from_state({"plain": {"type": "role", "allow": "-1", "deny": "2048"}})
        self.assertEqual(chan(server(), ["plain"], ALICE, ows) & P.SEND_MESSAGES, 0)
        # An empty (deleted) overwrite is no overwrite.
        self.assertEqual(chan(server(), [], ALICE, overwrites_from_state({"": {}})), DEFAULT_EVERYONE)

    def test_overwrite_cannot_make_an_admin(self):
        ows = overwrites_from_state({member_state_key(ALICE): {"type": "member", "allow": str(ALL)}})
        bits = chan(server(), [], ALICE, ows)
        self.assertFalse(bits & P.ADMINISTRATOR)
        self.assertEqual(bits, ALL & ~P.ADMINISTRATOR)


bits_st = st.integers(min_value=0, max_value=ALL).map(lambda b: b & ALL)
overwrite_st = st.builds(lambda a, d: (a & ~P.ADMINISTRATOR, d & ~P.ADMINISTRATOR), bits_st, bits_st)


@st.composite
def scenario(draw):
    ids = ["a", "b", "c"]
    roles = {EVERYONE: role(EVERYONE, draw(bits_st) & ~P.ADMINISTRATOR)}
    for i, rid in enumerate(ids):
        roles[rid] = role(rid, draw(bits_st) & ~P.ADMINISTRATOR, i + 1)
    held = draw(st.lists(st.sampled_from(ids), unique=True))
    ows = {}
    for target in draw(st.lists(st.sampled_from(["", *ids, ALICE]), unique=True)):
        allow, deny = draw(overwrite_st)
        ows[target] = ow(target, "member" if target == ALICE else "role", allow, deny)
    return roles, held, ows


class ChannelPropertiesTest(unittest.TestCase):
    @settings(database=None, max_examples=200, deadline=None)
    @given(scenario())
    def test_result_is_within_all(self, s):
        roles, held, ows = s
        self.assertEqual(chan(roles, held, ALICE, ows) & ~ALL, 0)

    @settings(database=None, max_examples=200, deadline=None)
    @given(scenario(), st.sampled_from(["", "a", "b", "c", ALICE]), bits_st)
    def test_adding_an_allow_never_removes_a_bit(self, s, target, extra):
        roles, held, ows = s
        extra &= ~P.ADMINISTRATOR
        before = chan(roles, held, ALICE, ows)
        old = ows.get(target, ow(target, "member" if target == ALICE else "role"))
        more = dict(ows)
        more[target] = ow(target, old.kind, old.allow | extra, old.deny)
        after = chan(roles, held, ALICE, more)
        self.assertEqual(before & ~after, 0)

    @settings(database=None, max_examples=100, deadline=None)
    @given(scenario())
    def test_an_admin_has_all_whatever_the_overwrites(self, s):
        roles, held, ows = s
        roles = dict(roles, admin=role("admin", P.ADMINISTRATOR, 9))
        self.assertEqual(chan(roles, held + ["admin"], ALICE, ows), ALL)
        self.assertEqual(chan(roles, held, OWNER, ows), ALL)

    @settings(database=None, max_examples=100, deadline=None)
    @given(scenario())
    def test_channel_never_exceeds_what_overwrites_allow(self, s):
        roles, held, ows = s
        server_bits = server_permissions(OWNER, roles, held, ALICE)
        allowed = 0
        for o in ows.values():
            allowed |= o.allow
        self.assertEqual(chan(roles, held, ALICE, ows) & ~(server_bits | allowed), 0)


class HierarchyTest(unittest.TestCase):
    def setUp(self):
        self.roles = server(helper=role("helper", P.MANAGE_ROLES | P.SEND_MESSAGES, 3),
                            senior=role("senior", P.BAN_MEMBERS, 5), low=role("low", P.MANAGE_SERVER, 2),
                            ordinary=role("ordinary", P.VIEW_CHANNEL, 2))

    def test_highest_position(self):
        self.assertEqual(highest_position(self.roles, []), 0)
        self.assertEqual(highest_position(self.roles, ["plain", "mod", "gone"]), 5)
        self.assertEqual(highest_position(self.roles, [""]), 0)

    def test_manage_role_needs_manage_roles_and_a_lower_target(self):
        r = self.roles
        self.assertTrue(can_manage_role(OWNER, r, ["mod"], MOD, r["plain"]))
        self.assertTrue(can_manage_role(OWNER, r, ["mod"], MOD, r[""]))
        self.assertFalse(can_manage_role(OWNER, r, ["mod"], MOD, r["mod"]))        # own role
        self.assertFalse(can_manage_role(OWNER, r, ["mod"], MOD, r["senior"]))     # equal position
        self.assertFalse(can_manage_role(OWNER, r, ["mod"], MOD, r["admin"]))      # higher
        self.assertFalse(can_manage_role(OWNER, r, ["senior"], BOB, r["plain"]))   # no MANAGE_ROLES
        self.assertFalse(can_manage_role(OWNER, r, [], ALICE, r[""]))

    def test_admin_and_owner_manage_roles(self):
        r = self.roles
        self.assertTrue(can_manage_role(OWNER, r, ["admin"], ADMIN, r["mod"]))
        self.assertFalse(can_manage_role(OWNER, r, ["admin"], ADMIN, r["admin"]))
        self.assertTrue(can_manage_role(OWNER, r, [], OWNER, r["admin"]))
        self.assertTrue(can_manage_role(OWNER, r, [], OWNER, role("top", 0, 10 ** 6)))

    def test_manage_roles_via_everyone_cannot_touch_everyone(self):
        r = server(everyone=P.MANAGE_ROLES)
        self.assertFalse(can_manage_role(OWNER, r, [], ALICE, r[""]))

    def test_can_grant(self):
        mine = int(P.SEND_MESSAGES | P.MANAGE_ROLES)
        self.assertTrue(can_grant(mine, P.SEND_MESSAGES, 0))
        self.assertFalse(can_grant(mine, P.BAN_MEMBERS, 0))
        self.assertTrue(can_grant(mine, P.BAN_MEMBERS, P.BAN_MEMBERS | P.KICK_MEMBERS))  # removal, keep
        self.assertTrue(can_grant(mine, 0, ALL))  # taking bits away is fine
        self.assertFalse(can_grant(mine, P.ADMINISTRATOR, 0))
        self.assertFalse(can_grant(ALL & ~P.ADMINISTRATOR, P.ADMINISTRATOR, 0))
        self.assertTrue(can_grant(ALL, P.ADMINISTRATOR, 0))
        self.assertFalse(can_grant(ALL, 1 << 50, 0))

    def test_edit_role(self):
        r = self.roles
        plain = r["plain"]
        self.assertTrue(can_edit_role(OWNER, r, ["mod"], MOD, plain, Role("plain", "p", P.KICK_MEMBERS, 2)))
        self.assertFalse(can_edit_role(OWNER, r, ["mod"], MOD, plain, Role("plain", "p", P.MANAGE_SERVER, 2)))
        self.assertFalse(can_edit_role(OWNER, r, ["mod"], MOD, plain, Role("plain", "p", 0, 5)))  # up to mine
        self.assertFalse(can_edit_role(OWNER, r, ["mod"], MOD, plain, Role("plain", "p", P.ADMINISTRATOR, 1)))
        self.assertTrue(can_edit_role(OWNER, r, ["mod"], MOD, None, Role("new", "n", P.BAN_MEMBERS, 4)))
        self.assertFalse(can_edit_role(OWNER, r, ["mod"], MOD, None, Role("new", "n", 0, 6)))
        self.assertFalse(can_edit_role(OWNER, r, ["mod"], MOD, r["senior"], Role("senior", "s", 0, 1)))
        self.assertTrue(can_edit_role(OWNER, r, ["admin"], ADMIN, None, Role("x", "x", P.ADMINISTRATOR, 9)))
        self.assertTrue(can_edit_role(OWNER, r, [], OWNER, r["admin"], Role("admin", "a", ALL, 99)))
        self.assertFalse(can_edit_role(OWNER, r, [], OWNER, None, Role("x", "x", 1 << 55, 1)))

    def test_assign_roles(self):
        r = self.roles
        self.assertTrue(can_assign_roles(OWNER, r, ["mod"], MOD, added=["plain"]))
        self.assertTrue(can_assign_roles(OWNER, r, ["mod"], MOD, removed=["plain", "low"]))
        self.assertFalse(can_assign_roles(OWNER, r, ["mod"], MOD, added=["low"]))       # MANAGE_SERVER lacked
        self.assertFalse(can_assign_roles(OWNER, r, ["mod"], MOD, added=["mod"]))       # own position
        self.assertFalse(can_assign_roles(OWNER, r, ["mod"], MOD, removed=["senior"]))  # equal
        self.assertFalse(can_assign_roles(OWNER, r, ["mod"], MOD, added=["admin"]))
        self.assertFalse(can_assign_roles(OWNER, r, ["mod"], MOD, added=[""]))
        self.assertFalse(can_assign_roles(OWNER, r, ["mod"], MOD, added=["gone"]))
        self.assertFalse(can_assign_roles(OWNER, r, ["plain"], ALICE, added=["ordinary"]))  # no MANAGE_ROLES
        self.assertTrue(can_assign_roles(OWNER, r, [], OWNER, added=["admin"], removed=["senior"]))
        self.assertTrue(can_assign_roles(OWNER, r, ["admin"], ADMIN, added=["senior", "mod"]))
        self.assertFalse(can_assign_roles(OWNER, r, ["admin"], ADMIN, added=["admin"]))

    def test_manage_roles_cannot_hand_out_administrator(self):
        r = server(sneaky=role("sneaky", P.ADMINISTRATOR, 1))
        self.assertFalse(can_assign_roles(OWNER, r, ["mod"], MOD, added=["sneaky"]))
        self.assertTrue(can_assign_roles(OWNER, r, ["mod"], MOD, removed=["sneaky"]))
        self.assertTrue(can_assign_roles(OWNER, r, ["admin"], ADMIN, added=["sneaky"]))

    def test_moderate(self):
        r = self.roles
        kick = P.KICK_MEMBERS
        self.assertTrue(can_moderate(OWNER, r, ["mod"], MOD, [], ALICE, kick))
        self.assertTrue(can_moderate(OWNER, r, ["mod"], MOD, ["plain"], ALICE, P.BAN_MEMBERS))
        self.assertFalse(can_moderate(OWNER, r, ["mod"], MOD, ["senior"], BOB, kick))    # equal
        self.assertFalse(can_moderate(OWNER, r, ["mod"], MOD, ["admin"], ADMIN, kick))   # higher
        self.assertFalse(can_moderate(OWNER, r, ["mod"], MOD, [], OWNER, kick))          # the owner
        self.assertFalse(can_moderate(OWNER, r, ["mod"], MOD, ["mod"], MOD, kick))       # self
        self.assertFalse(can_moderate(OWNER, r, ["mod"], MOD, [], ALICE, P.MODERATE_MEMBERS))  # lacks bit
        self.assertFalse(can_moderate(OWNER, r, ["plain"], BOB, [], ALICE, kick))
        self.assertTrue(can_moderate(OWNER, r, [], OWNER, ["admin"], ADMIN, P.BAN_MEMBERS))
        self.assertTrue(can_moderate(OWNER, r, ["admin"], ADMIN, ["mod"], MOD, P.BAN_MEMBERS))
        self.assertFalse(can_moderate(OWNER, r, ["admin"], ADMIN, [], OWNER, P.BAN_MEMBERS))

    def test_everyone_with_kick_cannot_kick_an_equal(self):
        r = server(everyone=P.KICK_MEMBERS)
        self.assertFalse(can_moderate(OWNER, r, [], ALICE, [], BOB, P.KICK_MEMBERS))


class MirrorTest(unittest.TestCase):
    def test_levels(self):
        members = {ADMIN: ["admin"], MOD: ["mod"], ALICE: ["plain"], BOB: [], OWNER: []}
        pl = power_levels_mirror(OWNER, server(), members, {})
        self.assertEqual(pl["users"], {ADMIN: 100, MOD: 50, OWNER: 100})
        self.assertEqual(pl["events_default"], 0)
        self.assertEqual(pl["events"]["m.reaction"], 0)
        self.assertEqual((pl["kick"], pl["ban"], pl["redact"], pl["state_default"]), (50, 50, 50, 50))
        self.assertEqual((pl["invite"], pl["users_default"]), (0, 0))
        self.assertEqual(pl["notifications"], {"room": 0})  # @everyone may mention everyone

    def test_mention_everyone_sets_who_may_ping_the_room(self):
        roles = server(everyone=DEFAULT_EVERYONE & ~P.MENTION_EVERYONE, herald=role("herald", P.MENTION_EVERYONE))
        pl = power_levels_mirror(OWNER, roles, {ALICE: ["herald"], BOB: []}, {})
        self.assertEqual(pl["notifications"], {"room": SPEAKER_LEVEL})
        self.assertEqual(pl["users"], {ALICE: SPEAKER_LEVEL, OWNER: ADMIN_LEVEL})

    def test_each_moderation_bit_makes_a_moderator(self):
        for bit in (P.KICK_MEMBERS, P.BAN_MEMBERS, P.MANAGE_MESSAGES, P.MANAGE_CHANNELS, P.MANAGE_SERVER,
                    P.MANAGE_ROLES):
            pl = power_levels_mirror(OWNER, server(m=role("m", bit)), {ALICE: ["m"]}, None)
            self.assertEqual(pl["users"][ALICE], MODERATOR_LEVEL, bit)
        pl = power_levels_mirror(OWNER, server(m=role("m", P.VIEW_AUDIT_LOG)), {ALICE: ["m"]}, None)
        self.assertNotIn(ALICE, pl["users"])

    def test_read_only_server(self):
        roles = server(everyone=P.VIEW_CHANNEL | P.READ_MESSAGE_HISTORY,
                       speaker=role("speaker", P.SEND_MESSAGES))
        pl = power_levels_mirror(OWNER, roles, {ALICE: ["speaker"], BOB: []}, {})
        self.assertEqual(pl["events_default"], SPEAKER_LEVEL)
        self.assertEqual(pl["events"]["m.reaction"], SPEAKER_LEVEL)
        self.assertEqual(pl["invite"], MODERATOR_LEVEL)
        self.assertEqual(pl["users"], {ALICE: SPEAKER_LEVEL, OWNER: ADMIN_LEVEL})
        self.assertLess(SPEAKER_LEVEL, pl["kick"])

    def test_channel_overwrites_shape_the_mirror(self):
        ows = {"": ow("", deny=P.SEND_MESSAGES), "plain": ow("plain", allow=P.SEND_MESSAGES)}
        pl = power_levels_mirror(OWNER, server(), {ALICE: ["plain"], BOB: [], MOD: ["mod"]}, {}, overwrites=ows)
        self.assertEqual(pl["events_default"], SPEAKER_LEVEL)
        self.assertEqual(pl["events"]["m.reaction"], 0)
        self.assertEqual(pl["users"], {ALICE: SPEAKER_LEVEL, MOD: MODERATOR_LEVEL, OWNER: ADMIN_LEVEL})

    def test_existing_keys_kept_and_stale_users_dropped(self):
        existing = {"users": {"@old:x": 100, MOD: 100}, "events": {"m.room.tombstone": 100, "bad": "x"},
                    "notifications": {"room": 100}, "historical": 100, "events_default": 77, "kick": 0}
        pl = power_levels_mirror(OWNER, server(), {MOD: ["mod"]}, existing, extra_users={"@bot:a.test": 100})
        self.assertEqual(pl["users"], {"@bot:a.test": 100, MOD: 50, OWNER: 100})
        self.assertEqual(pl["events"], {"m.reaction": 0, "m.room.tombstone": 100, CALL_MEMBER_EVENT: 0})
        self.assertEqual(pl["notifications"], {"room": 0})  # decided by MENTION_EVERYONE
        self.assertEqual(pl["historical"], 100)
        self.assertEqual((pl["events_default"], pl["kick"]), (0, 50))
        self.assertEqual(existing["users"], {"@old:x": 100, MOD: 100})  # input untouched

    def test_deterministic(self):
        roles = server()
        a = {ALICE: ["plain"], MOD: ["mod"], ADMIN: ["admin"], BOB: []}
        b = dict(reversed(list(a.items())))
        pl_a = power_levels_mirror(OWNER, roles, a, {"events": {"z": 1, "a": 2}})
        pl_b = power_levels_mirror(OWNER, dict(reversed(list(roles.items()))), b, {"events": {"a": 2, "z": 1}})
        self.assertEqual(pl_a, pl_b)
        self.assertEqual(list(pl_a), list(pl_b))
        self.assertEqual(list(pl_a["users"]), list(pl_b["users"]))
        self.assertEqual(list(pl_a["users"]), sorted(pl_a["users"]))


class RequiredPermissionTest(unittest.TestCase):
    def test_messages(self):
        send = int(P.SEND_MESSAGES)
        self.assertEqual(required_permission("m.room.message", {"msgtype": "m.text", "body": "hi"}), send)
        for msgtype in ("m.image", "m.file", "m.video", "m.audio"):
            self.assertEqual(required_permission("m.room.message", {"msgtype": msgtype, "body": "x"}),
                             send | P.ATTACH_FILES)
        self.assertEqual(required_permission("m.room.message", None), send)
        self.assertEqual(required_permission("m.sticker", {}), send)

    def test_mass_mentions(self):
        mention = int(P.SEND_MESSAGES | P.MENTION_EVERYONE)
        msg = lambda **c: required_permission("m.room.message", {"msgtype": "m.text", **c})  # noqa: E731
        self.assertEqual(msg(body="x", **{"m.mentions": {"room": True}}), mention)
        self.assertEqual(msg(body="hey @everyone"), mention)
        self.assertEqual(msg(body="@here!"), mention)
        self.assertEqual(msg(body="ping @room"), mention)
        self.assertEqual(msg(body="ping @room", **{"m.mentions": {}}), int(P.SEND_MESSAGES))
        self.assertEqual(msg(body="mail me@everyone.test"), int(P.SEND_MESSAGES))
        self.assertEqual(msg(body="@everyoneelse"), int(P.SEND_MESSAGES))
        self.assertEqual(msg(body="x", **{"m.mentions": {"room": "true"}}), int(P.SEND_MESSAGES))
        self.assertEqual(msg(body=5), int(P.SEND_MESSAGES))

    def test_other_events(self):
        self.assertEqual(required_permission("m.reaction", {}), P.ADD_REACTIONS)
        self.assertEqual(required_permission("m.room.pinned_events", {}), P.MANAGE_MESSAGES)
        self.assertEqual(required_permission("io.drocsid.overwrite", {}), P.MANAGE_ROLES)
        self.assertEqual(required_permission("m.room.name", {}), P.MANAGE_CHANNELS)
        self.assertEqual(required_permission("m.room.topic", {}), P.MANAGE_CHANNELS)
        self.assertEqual(required_permission("m.room.name", {}, in_space=True), P.MANAGE_SERVER)
        self.assertEqual(required_permission("m.space.child", {}, in_space=True), P.MANAGE_CHANNELS)
        self.assertEqual(required_permission("io.drocsid.role", {}, in_space=True), P.MANAGE_ROLES)
        self.assertIsNone(required_permission("m.room.redaction", {}))
        self.assertIsNone(required_permission("com.example.custom", {}))

    def test_membership(self):
        member = lambda m, **kw: required_permission("m.room.member", {"membership": m}, **kw)  # noqa: E731
        self.assertEqual(member("ban", state_key=BOB, sender=MOD), P.BAN_MEMBERS)
        self.assertEqual(member("invite", state_key=BOB, sender=ALICE), P.CREATE_INSTANT_INVITE)
        self.assertEqual(member("leave", state_key=BOB, sender=MOD), P.KICK_MEMBERS)
        self.assertIsNone(member("leave", state_key=BOB, sender=BOB))
        self.assertIsNone(member("join", state_key=BOB, sender=BOB))
        self.assertIsNone(required_permission("m.room.member", "junk"))

    def test_has_permissions(self):
        self.assertTrue(has_permissions(0, None))
        self.assertTrue(has_permissions(DEFAULT_EVERYONE, P.SEND_MESSAGES | P.ATTACH_FILES))
        self.assertFalse(has_permissions(P.SEND_MESSAGES, P.SEND_MESSAGES | P.ATTACH_FILES))

    def test_hiding_a_federated_message(self):
        # A muted member's media message in a channel: hidden on every instance alike.
        ows = {ALICE: ow(ALICE, "member", deny=P.ATTACH_FILES)}
        need = required_permission("m.room.message", {"msgtype": "m.image", "body": "cat.png"})
        self.assertFalse(has_permissions(chan(server(), [], ALICE, ows), need))
        self.assertTrue(has_permissions(chan(server(), [], BOB, ows), need))
