"""The authorisation rules of room versions 10-12, one test per rule (allowed and refused).

Rules common to all versions run once per version through ``_EveryVersion`` subclasses;
the version-specific ones have classes of their own. Events are built unsigned (a dummy
signature from the sender's server) except where a signature is what the rule checks.
"""

from __future__ import annotations

import itertools
from typing import Any

from signedjson.key import encode_verify_key_base64, generate_signing_key, get_verify_key
from signedjson.sign import sign_json
from twisted.trial import unittest

from homeserver.events.auth_events import auth_types_for_event
from homeserver.events.auth_rules import (
    AuthError, check_auth, check_auth_events, creators, event_power_level, is_power_event, is_valid_user_id,
    membership_of, power_level_for, user_power_level,
)
from homeserver.events.event import Event
from homeserver.events.room_versions import V10, V11, V12, RoomVersion

CREATE = "m.room.create"
MEMBER = "m.room.member"
PL = "m.room.power_levels"
JOIN_RULES = "m.room.join_rules"
TPI = "m.room.third_party_invite"
MESSAGE = "m.room.message"
CREATE_KEY = (CREATE, "")
PL_KEY = (PL, "")
JR_KEY = (JOIN_RULES, "")

ALICE = "@alice:a.test"   # the creator
BOB = "@bob:b.test"       # moderator, level 50
CAROL = "@carol:c.test"   # joined, level 0
DAVE = "@dave:d.test"     # not in the room
ERIN = "@erin:a.test"     # not in the room, same server as the creator

SCALARS = ("users_default", "events_default", "state_default", "ban", "redact", "kick", "invite")


def domain(user_id: str) -> str:
    return user_id.partition(":")[2]


_ROOM_NUMBERS = itertools.count()


class Room:
    """A room's state built by hand: events are made, then (optionally) added to the state."""

    def __init__(self, version: RoomVersion, *, sender: str = ALICE, creator: str | None = ALICE,
                 extra_create_content: dict[str, Any] | None = None):
        self.version = version
        self._ids = itertools.count()
        content: dict[str, Any] = {"room_version": version.identifier}
        if not version.creator_from_sender and creator is not None:
            content["creator"] = creator
        content.update(extra_create_content or {})
        pdu: dict[str, Any] = {"type": CREATE, "state_key": "", "sender": sender, "content": content,
                               "prev_events": [], "auth_events": [], "depth": 1, "origin_server_ts": 0,
                               "signatures": {domain(sender): {"ed25519:k": "sig"}}}
        if not version.room_id_from_create:
            pdu["room_id"] = "!room:" + domain(sender)
        self.create = Event(pdu, version, f"$create{next(_ROOM_NUMBERS)}-{version.identifier}")
        self.room_id = self.create.room_id
        self.state: dict[tuple[str, str], Event] = {CREATE_KEY: self.create}
        self.last = self.create.event_id

    def event(self, event_type: str, sender: str, content: dict[str, Any] | None = None, *,
              state_key: str | None = None, prev: list[str] | None = None, auth: list[str] | None = None,
              signatures: dict[str, Any] | None = None, room_id: str | None = None) -> Event:
        pdu: dict[str, Any] = {
            "type": event_type, "sender": sender, "content": {} if content is None else content,
            "room_id": room_id or self.room_id, "prev_events": [self.last] if prev is None else prev,
            "auth_events": auth or [], "depth": 2, "origin_server_ts": 0,
            "signatures": signatures if signatures is not None else {domain(sender): {"ed25519:k": "sig"}},
        }
        if state_key is not None:
            pdu["state_key"] = state_key
        return Event(pdu, self.version, f"$e{next(self._ids)}-{self.version.identifier}")

    def add(self, event: Event) -> Event:
        self.state[(event.type, event.state_key)] = event
        self.last = event.event_id
        return event

    def set_state(self, event_type: str, sender: str, content: dict[str, Any], state_key: str = "") -> Event:
        return self.add(self.event(event_type, sender, content, state_key=state_key))

    def member(self, target: str, membership: str, sender: str | None = None, **content: Any) -> Event:
        return self.event(MEMBER, sender or target, {"membership": membership, **content}, state_key=target)

    def set_member(self, target: str, membership: str, sender: str | None = None) -> Event:
        return self.add(self.member(target, membership, sender))

    def power_levels(self, **content: Any) -> Event:
        return self.set_state(PL, ALICE, content)

    def cited(self, event: Event) -> list[Event]:
        """The state the selection algorithm picks for ``event``, as its auth events."""
        keys = auth_types_for_event(self.version, event.type, event.sender, event.state_key, event.content)
        return [self.state[key] for key in keys if key in self.state]


def standard_room(version: RoomVersion, join_rule: str = "invite") -> Room:
    """Alice created it; Bob (50) and Carol (0) are joined; Alice is 100 (or a v12 creator)."""
    room = Room(version)
    room.set_member(ALICE, "join")
    users = {BOB: 50}
    if not version.infinite_creator_power:
        users[ALICE] = 100
    room.power_levels(users=users, users_default=0, events_default=0, state_default=50, ban=50, kick=50,
                      redact=50, invite=0, events={PL: 100})
    room.set_state(JOIN_RULES, ALICE, {"join_rule": join_rule})
    room.set_member(BOB, "join")
    room.set_member(CAROL, "join")
    return room


def with_auth(room: Room, event: Event) -> Event:
    """A copy of ``event`` citing what the selection picks from the room's state."""
    cited = room.cited(event)
    pdu = dict(event.pdu, auth_events=[e.event_id for e in cited])
    return Event(pdu, room.version, event.event_id)


class _AuthAssertions:
    def allowed(self, room: Room, event: Event) -> None:
        check_auth(room.version, event, room.state)

    def refused(self, room: Room, event: Event, reason: str) -> None:
        error = self.assertRaises(AuthError, check_auth, room.version, event, room.state)
        self.assertIn(reason, str(error))

    def refused_auth_events(self, room: Room, event: Event, auth_events: list[Event], reason: str) -> None:
        error = self.assertRaises(AuthError, check_auth_events, room.version, event, auth_events)
        self.assertIn(reason, str(error))

    def alongside(self, room: Room, cited: list[Event]) -> list[Event]:
        """What the caller passes to check_auth_events: in v12, the create too."""
        return cited + ([room.create] if room.version.room_id_from_create else [])


class _EveryVersion(_AuthAssertions):
    version: RoomVersion

    def setUp(self) -> None:
        self.room = standard_room(self.version)

    # --- the create event --------------------------------------------------------

    def test_create_allowed(self):
        self.allowed(Room(self.version), Room(self.version).create)

    def test_create_with_prev_events_refused(self):
        room = Room(self.version)
        pdu = dict(room.create.pdu, prev_events=["$other"])
        self.refused(Room(self.version), Event(pdu, self.version, "$c2"), "prev_events")

    def test_create_unknown_room_version_refused(self):
        for value in ("9", "unknown", 11):
            room = Room(self.version, extra_create_content={"room_version": value})
            self.refused(room, room.create, "room_version")

    def test_create_without_room_version_allowed(self):
        room = Room(self.version)
        del room.create.content["room_version"]
        self.allowed(room, room.create)

    # --- the event's auth_events ---------------------------------------------------

    def test_auth_events_of_selection_allowed(self):
        event = with_auth(self.room, self.room.event(MESSAGE, CAROL, {"body": "hi"}))
        check_auth_events(self.version, event, self.alongside(self.room, self.room.cited(event)))

    def test_create_event_has_no_auth_event_rules(self):
        check_auth_events(self.version, self.room.create, [])

    def test_auth_events_duplicate_pair_refused(self):
        old_pl = self.room.state[PL_KEY]
        new_pl = self.room.power_levels(users={BOB: 50}, events={PL: 100})
        message = self.room.event(MESSAGE, CAROL, {})
        cited = self.room.cited(message) + [old_pl]
        event = self.room.event(MESSAGE, CAROL, {}, auth=[e.event_id for e in cited])
        self.assertIn(new_pl, cited)
        self.refused_auth_events(self.room, event, self.alongside(self.room, cited), "more than one entry")

    def test_auth_events_same_id_twice_refused(self):
        cited = self.room.cited(self.room.event(MESSAGE, CAROL, {}))
        ids = [e.event_id for e in cited]
        event = self.room.event(MESSAGE, CAROL, {}, auth=ids + ids[-1:])
        self.refused_auth_events(self.room, event, self.alongside(self.room, cited), "more than once")

    def test_auth_events_entry_not_in_selection_refused(self):
        cited = self.room.cited(self.room.event(MESSAGE, CAROL, {})) + [self.room.state[JR_KEY]]
        event = self.room.event(MESSAGE, CAROL, {}, auth=[e.event_id for e in cited])
        self.refused_auth_events(self.room, event, self.alongside(self.room, cited), "does not pick")

    def test_auth_events_other_members_event_refused(self):
        cited = self.room.cited(self.room.event(MESSAGE, CAROL, {})) + [self.room.state[(MEMBER, BOB)]]
        event = self.room.event(MESSAGE, CAROL, {}, auth=[e.event_id for e in cited])
        self.refused_auth_events(self.room, event, self.alongside(self.room, cited), "does not pick")

    def test_auth_events_rejected_entry_refused(self):
        event = with_auth(self.room, self.room.event(MESSAGE, CAROL, {}))
        cited = self.room.cited(event)
        self.room.state[PL_KEY].rejected_reason = "auth"
        self.refused_auth_events(self.room, event, self.alongside(self.room, cited), "itself rejected")

    def test_auth_events_from_another_room_refused(self):
        stranger = Room(self.version, sender=DAVE)
        foreign_pl = stranger.power_levels(users={})
        cited = [e for e in self.room.cited(self.room.event(MESSAGE, CAROL, {})) if e.type != PL] + [foreign_pl]
        event = self.room.event(MESSAGE, CAROL, {}, auth=[e.event_id for e in cited])
        self.refused_auth_events(self.room, event, self.alongside(self.room, cited), "another room")

    def test_auth_events_not_supplied_refused(self):
        event = with_auth(self.room, self.room.event(MESSAGE, CAROL, {}))
        cited = self.room.cited(event)[:-1]
        self.refused_auth_events(self.room, event, self.alongside(self.room, cited), "not available")

    def test_auth_events_for_a_join_with_authoriser_allowed(self):
        room = standard_room(self.version, "restricted")
        join = with_auth(room, room.member(DAVE, "join", join_authorised_via_users_server=BOB))
        self.assertIn((MEMBER, BOB), [(e.type, e.state_key) for e in room.cited(join)])
        check_auth_events(self.version, join, self.alongside(room, room.cited(join)))

    # --- m.federate ----------------------------------------------------------------

    def test_unfederated_room_refuses_other_servers(self):
        room = Room(self.version, extra_create_content={"m.federate": False})
        room.set_member(ALICE, "join")
        room.set_state(JOIN_RULES, ALICE, {"join_rule": "public"})
        self.refused(room, room.member(DAVE, "join"), "does not federate")
        self.allowed(room, room.member(ERIN, "join"))

    def test_federating_room_allows_other_servers(self):
        room = Room(self.version, extra_create_content={"m.federate": True})
        room.set_member(ALICE, "join")
        room.set_state(JOIN_RULES, ALICE, {"join_rule": "public"})
        self.allowed(room, room.member(DAVE, "join"))

    def test_state_without_create_refused(self):
        del self.room.state[CREATE_KEY]
        self.refused(self.room, self.room.event(MESSAGE, CAROL, {}), "no m.room.create")

    # --- m.room.member: shape --------------------------------------------------------

    def test_member_without_membership_refused(self):
        self.refused(self.room, self.room.event(MEMBER, CAROL, {}, state_key=CAROL), "membership")
        self.refused(self.room, self.room.event(MEMBER, CAROL, {"membership": 1}, state_key=CAROL), "membership")

    def test_member_without_state_key_refused(self):
        self.refused(self.room, self.room.event(MEMBER, CAROL, {"membership": "join"}), "state_key")

    def test_unknown_membership_refused(self):
        self.refused(self.room, self.room.member(CAROL, "sleep"), "unknown membership")

    def test_authoriser_server_signature_required(self):
        room = standard_room(self.version, "restricted")
        unsigned_by_b = room.member(DAVE, "join", join_authorised_via_users_server=BOB)
        self.refused(room, unsigned_by_b, "not signed by the server")
        signed = room.event(MEMBER, DAVE, {"membership": "join", "join_authorised_via_users_server": BOB},
                            state_key=DAVE, signatures={"d.test": {"ed25519:k": "s"}, "b.test": {"ed25519:k": "s"}})
        self.allowed(room, signed)

    def test_authoriser_signature_required_for_any_membership(self):
        leave = self.room.member(CAROL, "leave", join_authorised_via_users_server=BOB)
        self.refused(self.room, leave, "not signed by the server")

    def test_authoriser_not_a_user_id_refused(self):
        room = standard_room(self.version, "restricted")
        self.refused(room, room.member(DAVE, "join", join_authorised_via_users_server=42), "not a user ID")

    # --- join ------------------------------------------------------------------------

    def test_creator_first_join_allowed(self):
        room = Room(self.version)
        self.allowed(room, room.member(ALICE, "join", prev=None))

    def test_first_join_of_someone_else_refused(self):
        room = Room(self.version)
        self.refused(room, room.member(DAVE, "join"), "not invited")

    def test_creator_join_not_directly_after_create_refused(self):
        room = Room(self.version)
        join = room.event(MEMBER, ALICE, {"membership": "join"}, state_key=ALICE, prev=["$elsewhere"])
        self.refused(room, join, "not invited")

    def test_join_for_another_user_refused(self):
        room = standard_room(self.version, "public")
        self.refused(room, room.member(DAVE, "join", sender=CAROL), "on behalf of another user")

    def test_banned_join_refused(self):
        room = standard_room(self.version, "public")
        room.set_member(DAVE, "ban", sender=ALICE)
        self.refused(room, room.member(DAVE, "join"), "banned")

    def test_invite_rule_join_when_invited_allowed(self):
        self.room.set_member(DAVE, "invite", sender=CAROL)
        self.allowed(self.room, self.room.member(DAVE, "join"))

    def test_invite_rule_join_when_joined_allowed(self):
        self.allowed(self.room, self.room.member(CAROL, "join", displayname="Carol"))

    def test_invite_rule_join_uninvited_refused(self):
        self.refused(self.room, self.room.member(DAVE, "join"), "not invited")

    def test_knock_rule_join_when_invited_allowed(self):
        room = standard_room(self.version, "knock")
        room.set_member(DAVE, "invite", sender=CAROL)
        self.allowed(room, room.member(DAVE, "join"))

    def test_knock_rule_join_uninvited_refused(self):
        room = standard_room(self.version, "knock")
        room.set_member(DAVE, "knock")
        self.refused(room, room.member(DAVE, "join"), "not invited")

    def test_no_join_rules_event_behaves_as_invite(self):
        del self.room.state[JR_KEY]
        self.refused(self.room, self.room.member(DAVE, "join"), "not invited")
        self.room.set_member(DAVE, "invite", sender=CAROL)
        self.allowed(self.room, self.room.member(DAVE, "join"))

    def _restricted_join(self, room: Room, authoriser: str) -> Event:
        signatures = {"d.test": {"ed25519:k": "s"}, domain(authoriser): {"ed25519:k": "s"}}
        return room.event(MEMBER, DAVE, {"membership": "join", "join_authorised_via_users_server": authoriser},
                          state_key=DAVE, signatures=signatures)

    def test_restricted_join_when_invited_allowed(self):
        for rule in ("restricted", "knock_restricted"):
            room = standard_room(self.version, rule)
            room.set_member(DAVE, "invite", sender=CAROL)
            self.allowed(room, room.member(DAVE, "join"))

    def test_restricted_join_when_joined_allowed(self):
        room = standard_room(self.version, "restricted")
        self.allowed(room, room.member(CAROL, "join", displayname="C"))

    def test_restricted_join_via_joined_inviter_allowed(self):
        for rule in ("restricted", "knock_restricted"):
            room = standard_room(self.version, rule)
            self.allowed(room, self._restricted_join(room, BOB))

    def test_restricted_join_without_authoriser_refused(self):
        room = standard_room(self.version, "restricted")
        self.refused(room, room.member(DAVE, "join"), "without join_authorised_via_users_server")

    def test_restricted_join_via_unjoined_user_refused(self):
        room = standard_room(self.version, "knock_restricted")
        self.refused(room, self._restricted_join(room, ERIN), "is not joined")

    def test_restricted_join_via_user_without_invite_power_refused(self):
        room = standard_room(self.version, "restricted")
        room.power_levels(users={BOB: 50}, invite=50)
        self.refused(room, self._restricted_join(room, CAROL), "cannot invite")

    def test_public_join_allowed(self):
        room = standard_room(self.version, "public")
        self.allowed(room, room.member(DAVE, "join"))

    def test_private_or_unknown_join_rule_refused(self):
        for rule in ("private", "secret", ["public"]):
            room = standard_room(self.version, "public")
            room.set_state(JOIN_RULES, ALICE, {"join_rule": rule})
            self.refused(room, room.member(DAVE, "join"), "does not allow joining")

    # --- invite ------------------------------------------------------------------------

    def test_invite_allowed(self):
        self.allowed(self.room, self.room.member(DAVE, "invite", sender=CAROL))

    def test_invite_by_unjoined_sender_refused(self):
        self.refused(self.room, self.room.member(DAVE, "invite", sender=ERIN), "sender is not joined")

    def test_invite_of_joined_or_banned_target_refused(self):
        self.refused(self.room, self.room.member(BOB, "invite", sender=CAROL), "joined or banned")
        self.room.set_member(DAVE, "ban", sender=ALICE)
        self.refused(self.room, self.room.member(DAVE, "invite", sender=CAROL), "joined or banned")

    def test_invite_below_invite_level_refused(self):
        self.room.power_levels(users={BOB: 50}, invite=50)
        self.refused(self.room, self.room.member(DAVE, "invite", sender=CAROL), "invite level")
        self.allowed(self.room, self.room.member(DAVE, "invite", sender=BOB))

    # --- invite with third_party_invite --------------------------------------------------

    def _third_party_setup(self, sender: str = CAROL, as_list: bool = False):
        key = generate_signing_key("1")
        public = encode_verify_key_base64(get_verify_key(key))
        content = {"display_name": "d...@d.test", "key_validity_url": "https://id.test/isvalid"}
        if as_list:
            content["public_keys"] = [{"public_key": "not a key"}, {"public_key": public}]
        else:
            content["public_key"] = public
        self.room.set_state(TPI, sender, content, state_key="tok")
        return key

    def _third_party_invite(self, signed: Any, sender: str = CAROL, target: str = DAVE) -> Event:
        content = {"membership": "invite", "third_party_invite": {"display_name": "d", "signed": signed}}
        return self.room.event(MEMBER, sender, content, state_key=target)

    def _signed(self, key, mxid: str = DAVE, token: str = "tok", server: str = "id.test") -> dict:
        return sign_json({"mxid": mxid, "sender": CAROL, "token": token}, server, key)

    def test_third_party_invite_signed_by_public_key_allowed(self):
        key = self._third_party_setup()
        self.allowed(self.room, self._third_party_invite(self._signed(key)))

    def test_third_party_invite_signed_by_key_in_public_keys_allowed(self):
        key = self._third_party_setup(as_list=True)
        self.allowed(self.room, self._third_party_invite(self._signed(key)))

    def test_third_party_invite_signed_under_any_server_name_allowed(self):
        key = self._third_party_setup()
        self.allowed(self.room, self._third_party_invite(self._signed(key, server="other-name.example")))

    def test_third_party_invite_needs_no_joined_sender(self):
        key = self._third_party_setup(sender=ERIN)
        self.allowed(self.room, self._third_party_invite(self._signed(key), sender=ERIN))

    def test_third_party_invite_of_banned_target_refused(self):
        key = self._third_party_setup()
        self.room.set_member(DAVE, "ban", sender=ALICE)
        self.refused(self.room, self._third_party_invite(self._signed(key)), "target is banned")

    def test_third_party_invite_without_signed_refused(self):
        self._third_party_setup()
        self.refused(self.room, self._third_party_invite(None), "no signed block")
        bare = self.room.event(MEMBER, CAROL, {"membership": "invite", "third_party_invite": {}}, state_key=DAVE)
        self.refused(self.room, bare, "no signed block")

    def test_third_party_invite_without_mxid_or_token_refused(self):
        key = self._third_party_setup()
        for missing in ("mxid", "token"):
            signed = self._signed(key)
            del signed[missing]
            self.refused(self.room, self._third_party_invite(signed), "needs mxid and token")

    def test_third_party_invite_mxid_not_state_key_refused(self):
        key = self._third_party_setup()
        self.refused(self.room, self._third_party_invite(self._signed(key, mxid=ERIN)), "mxid is not the state_key")

    def test_third_party_invite_without_matching_event_refused(self):
        key = self._third_party_setup()
        self.refused(self.room, self._third_party_invite(self._signed(key, token="other")), "for the token")

    def test_third_party_invite_from_another_sender_refused(self):
        key = self._third_party_setup(sender=BOB)
        self.refused(self.room, self._third_party_invite(self._signed(key)), "did not send")

    def test_third_party_invite_with_bad_signature_refused(self):
        self._third_party_setup()
        other_key = generate_signing_key("1")
        self.refused(self.room, self._third_party_invite(self._signed(other_key)), "no signature")

    def test_third_party_invite_with_tampered_signed_refused(self):
        key = self._third_party_setup()
        signed = self._signed(key)
        signed["sender"] = BOB
        self.refused(self.room, self._third_party_invite(signed), "no signature")

    def test_third_party_invite_with_garbage_signature_refused(self):
        self._third_party_setup()
        signed = {"mxid": DAVE, "token": "tok", "signatures": {"id.test": {"ed25519:1": "!!", "rsa:1": "x"}}}
        self.refused(self.room, self._third_party_invite(signed), "no signature")

    # --- leave -------------------------------------------------------------------------

    def test_own_leave_when_joined_invited_or_knocking_allowed(self):
        self.allowed(self.room, self.room.member(CAROL, "leave"))
        for membership in ("invite", "knock"):
            self.room.set_member(DAVE, membership, sender=CAROL if membership == "invite" else DAVE)
            self.allowed(self.room, self.room.member(DAVE, "leave"))

    def test_own_leave_when_absent_left_or_banned_refused(self):
        self.refused(self.room, self.room.member(DAVE, "leave"), "cannot leave")
        self.room.set_member(ERIN, "leave")
        self.refused(self.room, self.room.member(ERIN, "leave"), "cannot leave")
        self.room.set_member(ERIN, "ban", sender=ALICE)
        self.refused(self.room, self.room.member(ERIN, "leave"), "cannot leave")

    def test_kick_by_unjoined_sender_refused(self):
        self.room.set_member(ERIN, "leave")
        self.refused(self.room, self.room.member(CAROL, "leave", sender=ERIN), "sender is not joined")

    def test_unban_below_ban_level_refused(self):
        self.room.power_levels(users={BOB: 50}, ban=60, kick=0)
        self.room.set_member(DAVE, "ban", sender=ALICE)
        self.refused(self.room, self.room.member(DAVE, "leave", sender=BOB), "cannot unban")

    def test_unban_allowed(self):
        self.room.set_member(DAVE, "ban", sender=ALICE)
        self.allowed(self.room, self.room.member(DAVE, "leave", sender=BOB))

    def test_kick_below_kick_level_refused(self):
        self.refused(self.room, self.room.member(BOB, "leave", sender=CAROL), "kick level")

    def test_kick_of_equal_or_higher_target_refused(self):
        self.room.power_levels(users={BOB: 50, CAROL: 50})
        self.refused(self.room, self.room.member(CAROL, "leave", sender=BOB), "not below the sender's")

    def test_kick_allowed(self):
        self.allowed(self.room, self.room.member(CAROL, "leave", sender=BOB))

    # --- ban -----------------------------------------------------------------------------

    def test_ban_allowed(self):
        self.allowed(self.room, self.room.member(CAROL, "ban", sender=BOB))
        self.allowed(self.room, self.room.member(DAVE, "ban", sender=BOB))

    def test_ban_by_unjoined_sender_refused(self):
        self.room.set_member(BOB, "leave")
        self.refused(self.room, self.room.member(CAROL, "ban", sender=BOB), "sender is not joined")

    def test_ban_below_ban_level_refused(self):
        self.refused(self.room, self.room.member(DAVE, "ban", sender=CAROL), "ban level")

    def test_ban_of_equal_or_higher_target_refused(self):
        self.room.power_levels(users=self._admin_users(**{CAROL: 50}))
        self.refused(self.room, self.room.member(CAROL, "ban", sender=BOB), "not below the sender's")
        self.refused(self.room, self.room.member(ALICE, "ban", sender=BOB), "not below the sender's")

    # --- knock ---------------------------------------------------------------------------

    def test_knock_allowed(self):
        for rule in ("knock", "knock_restricted"):
            room = standard_room(self.version, rule)
            self.allowed(room, room.member(DAVE, "knock"))

    def test_knock_after_leaving_allowed(self):
        room = standard_room(self.version, "knock")
        room.set_member(DAVE, "leave")
        self.allowed(room, room.member(DAVE, "knock"))

    def test_knock_when_rule_does_not_allow_refused(self):
        for rule in ("invite", "public", "restricted"):
            room = standard_room(self.version, rule)
            self.refused(room, room.member(DAVE, "knock"), "does not allow knocking")

    def test_knock_for_another_user_refused(self):
        room = standard_room(self.version, "knock")
        self.refused(room, room.member(DAVE, "knock", sender=CAROL), "on behalf of another user")

    def test_knock_when_banned_invited_or_joined_refused(self):
        room = standard_room(self.version, "knock")
        self.refused(room, room.member(CAROL, "knock"), "cannot knock")
        room.set_member(DAVE, "invite", sender=CAROL)
        self.refused(room, room.member(DAVE, "knock"), "cannot knock")
        room.set_member(DAVE, "ban", sender=ALICE)
        self.refused(room, room.member(DAVE, "knock"), "cannot knock")

    # --- the sender must be joined --------------------------------------------------------

    def test_message_from_joined_sender_allowed(self):
        self.allowed(self.room, self.room.event(MESSAGE, CAROL, {"body": "hi"}))

    def test_message_from_unjoined_sender_refused(self):
        self.refused(self.room, self.room.event(MESSAGE, DAVE, {}), "sender is not joined")
        self.room.set_member(DAVE, "invite", sender=CAROL)
        self.refused(self.room, self.room.event(MESSAGE, DAVE, {}), "sender is not joined")
        self.room.set_member(CAROL, "leave")
        self.refused(self.room, self.room.event(MESSAGE, CAROL, {}), "sender is not joined")

    # --- m.room.third_party_invite ---------------------------------------------------------

    def test_third_party_invite_event_at_invite_level_allowed(self):
        self.allowed(self.room, self.room.event(TPI, CAROL, {"public_key": "k"}, state_key="tok"))

    def test_third_party_invite_event_ignores_state_default(self):
        # Allowed purely on the invite level: state_default (50) does not apply.
        self.room.power_levels(users={BOB: 50}, invite=0, state_default=100)
        self.allowed(self.room, self.room.event(TPI, CAROL, {}, state_key="@bob:b.test"))

    def test_third_party_invite_event_below_invite_level_refused(self):
        self.room.power_levels(users={BOB: 50}, invite=10)
        self.refused(self.room, self.room.event(TPI, CAROL, {}, state_key="tok"), "invite level")

    # --- required power level ----------------------------------------------------------------

    def test_message_below_events_default_refused(self):
        self.room.power_levels(users={BOB: 50}, events_default=10)
        self.refused(self.room, self.room.event(MESSAGE, CAROL, {}), "level required")
        self.allowed(self.room, self.room.event(MESSAGE, BOB, {}))

    def test_state_below_state_default_refused(self):
        self.refused(self.room, self.room.event("m.room.topic", CAROL, {}, state_key=""), "level required")
        self.allowed(self.room, self.room.event("m.room.topic", BOB, {}, state_key=""))

    def test_events_entry_overrides_default(self):
        self.room.power_levels(users={BOB: 50}, events={"m.room.topic": 0, MESSAGE: 60})
        self.allowed(self.room, self.room.event("m.room.topic", CAROL, {}, state_key=""))
        self.refused(self.room, self.room.event(MESSAGE, BOB, {}), "level required")

    def test_redaction_needs_only_its_event_level(self):
        # The redact level is not an auth rule.
        self.room.power_levels(users={BOB: 50}, redact=100)
        self.allowed(self.room, self.room.event("m.room.redaction", CAROL, {"redacts": "$x"}))

    # --- state_key naming a user ---------------------------------------------------------------

    def test_state_key_of_another_user_refused(self):
        self.refused(self.room, self.room.event("m.custom", BOB, {}, state_key=CAROL), "names another user")

    def test_state_key_of_own_user_allowed(self):
        self.room.power_levels(users={BOB: 50}, state_default=0)
        self.allowed(self.room, self.room.event("m.custom", CAROL, {}, state_key=CAROL))
        self.allowed(self.room, self.room.event("m.custom", CAROL, {}, state_key="carol"))

    # --- m.room.power_levels: shape ---------------------------------------------------------------

    def _pl(self, sender: str = ALICE, **content: Any) -> Event:
        return self.room.event(PL, sender, content, state_key="")

    def _admin_users(self, **extra: int) -> dict[str, int]:
        users = {BOB: 50, **extra}
        if not self.version.infinite_creator_power:
            users[ALICE] = 100
        return users

    def test_power_levels_non_integer_scalars_refused(self):
        for name in SCALARS:
            for value in ("50", 50.0, True, None, [50]):
                self.refused(self.room, self._pl(users=self._admin_users(), **{name: value}),
                             f"{name} is not an integer")

    def test_power_levels_integer_scalars_allowed(self):
        self.allowed(self.room, self._pl(users=self._admin_users(), **{name: 0 for name in SCALARS}))

    def test_power_levels_non_integer_mappings_refused(self):
        for name in ("events", "notifications"):
            for value in ({"x": "50"}, {"x": 1.5}, {"x": False}, [1], "50"):
                self.refused(self.room, self._pl(users=self._admin_users(), **{name: value}),
                             f"{name} is not an object of integers")

    def test_power_levels_bad_users_refused(self):
        for users in ({"@x:x.test": "50"}, {"not-a-user": 0}, {"@nocolon": 0}, {"@x:bad host": 0}, [ALICE], 5):
            self.refused(self.room, self._pl(users=users), "users is not an object")

    def test_power_levels_historical_user_ids_allowed(self):
        self.allowed(self.room, self._pl(users=self._admin_users(**{"@Old User!:x.test": 0, "@v6:[::1]:8448": 0})))

    def test_first_power_levels_allowed(self):
        room = Room(self.version)
        room.set_member(ALICE, "join")
        self.allowed(room, room.event(PL, ALICE, {"users": {BOB: 100}, "ban": 100}, state_key=""))

    # --- m.room.power_levels: changes -----------------------------------------------------------------

    def test_scalar_change_within_sender_level_allowed(self):
        self.room.power_levels(users={BOB: 50}, events={PL: 50}, kick=50)
        self.allowed(self.room, self._pl(BOB, users={BOB: 50}, events={PL: 50}, kick=20, ban=50))

    def test_scalar_change_above_sender_level_refused(self):
        self.room.power_levels(users={BOB: 50}, events={PL: 50})
        self.refused(self.room, self._pl(BOB, users={BOB: 50}, events={PL: 50}, kick=51),
                     "cannot set power_levels kick")

    def test_scalar_change_of_value_above_sender_refused(self):
        self.room.power_levels(users={BOB: 50}, events={PL: 50}, ban=70)
        self.refused(self.room, self._pl(BOB, users={BOB: 50}, events={PL: 50}, ban=50),
                     "cannot change power_levels ban")

    def test_scalar_removal_of_value_above_sender_refused(self):
        self.room.power_levels(users={BOB: 50}, events={PL: 50}, redact=70)
        self.refused(self.room, self._pl(BOB, users={BOB: 50}, events={PL: 50}), "cannot change power_levels redact")

    def test_scalar_unchanged_above_sender_allowed(self):
        self.room.power_levels(users={BOB: 50}, events={PL: 50}, ban=70)
        self.allowed(self.room, self._pl(BOB, users={BOB: 50}, events={PL: 50}, ban=70, kick=10))

    def test_mapping_entry_change_of_value_above_sender_refused(self):
        for name in ("events", "notifications"):
            self.room.power_levels(users={BOB: 50}, **{"events": {PL: 50}, name: {PL: 50, "x": 70}})
            self.refused(self.room, self._pl(BOB, users={BOB: 50}, **{"events": {PL: 50}, name: {PL: 50, "x": 0}}),
                         f"cannot change power_levels {name}")
            self.refused(self.room, self._pl(BOB, users={BOB: 50}, **{"events": {PL: 50}, name: {PL: 50}}),
                         f"cannot change power_levels {name}")

    def test_mapping_entry_added_above_sender_refused(self):
        for name in ("events", "notifications"):
            self.room.power_levels(users={BOB: 50}, events={PL: 50})
            self.refused(self.room, self._pl(BOB, users={BOB: 50}, **{"events": {PL: 50}, name: {PL: 50, "x": 51}}),
                         f"cannot set power_levels {name}")

    def test_mapping_entry_added_at_sender_level_allowed(self):
        self.room.power_levels(users={BOB: 50}, events={PL: 50}, notifications={"room": 70})
        self.allowed(self.room, self._pl(BOB, users={BOB: 50}, events={PL: 50, "x": 50},
                                         notifications={"room": 70, "y": 50}))

    def test_users_change_of_equal_level_refused(self):
        self.room.power_levels(users={BOB: 50, CAROL: 50}, events={PL: 50})
        self.refused(self.room, self._pl(BOB, users={BOB: 50, CAROL: 0}, events={PL: 50}), "cannot change the level")
        self.refused(self.room, self._pl(BOB, users={BOB: 50}, events={PL: 50}), "cannot change the level")

    def test_users_change_of_lower_level_allowed(self):
        self.room.power_levels(users={BOB: 50, CAROL: 40}, events={PL: 50})
        self.allowed(self.room, self._pl(BOB, users={BOB: 50, CAROL: 0}, events={PL: 50}))

    def test_users_own_demotion_allowed(self):
        self.room.power_levels(users={BOB: 50}, events={PL: 50})
        self.allowed(self.room, self._pl(BOB, users={BOB: 10}, events={PL: 50}))

    def test_users_own_promotion_refused(self):
        self.room.power_levels(users={BOB: 50}, events={PL: 50})
        self.refused(self.room, self._pl(BOB, users={BOB: 51}, events={PL: 50}), "above the sender's")

    def test_users_added_above_sender_refused(self):
        self.room.power_levels(users={BOB: 50}, events={PL: 50})
        self.refused(self.room, self._pl(BOB, users={BOB: 50, CAROL: 51}, events={PL: 50}), "above the sender's")
        self.allowed(self.room, self._pl(BOB, users={BOB: 50, CAROL: 50}, events={PL: 50}))

    # --- helpers -----------------------------------------------------------------------------------------

    def test_power_levels_without_power_levels_event(self):
        room = Room(self.version)
        expected = float("inf") if self.version.infinite_creator_power else 100
        self.assertEqual(user_power_level(self.version, room.state, ALICE), expected)
        self.assertEqual(user_power_level(self.version, room.state, BOB), 0)
        self.assertEqual(event_power_level(room.state, "m.room.topic", True), 50)
        self.assertEqual(event_power_level(room.state, MESSAGE, False), 0)
        self.assertEqual([power_level_for(room.state, a) for a in ("invite", "kick", "ban", "redact")],
                         [0, 50, 50, 50])

    def test_power_levels_from_event(self):
        self.room.power_levels(users={BOB: 70}, users_default=5, kick=1, events={"x": 9},
                               state_default=20, events_default=3)
        self.assertEqual(user_power_level(self.version, self.room.state, BOB), 70)
        self.assertEqual(user_power_level(self.version, self.room.state, CAROL), 5)
        self.assertEqual(event_power_level(self.room.state, "x", False), 9)
        self.assertEqual(event_power_level(self.room.state, "y", True), 20)
        self.assertEqual(event_power_level(self.room.state, "y", False), 3)
        self.assertEqual(power_level_for(self.room.state, "kick"), 1)
        self.assertEqual(power_level_for(self.room.state, "ban"), 50)
        self.assertRaises(ValueError, power_level_for, self.room.state, "fly")

    def test_membership_of(self):
        self.assertEqual(membership_of(self.room.state, CAROL), "join")
        self.assertEqual(membership_of(self.room.state, DAVE), "leave")

    def test_is_power_event(self):
        room = self.room
        self.assertTrue(is_power_event(room.state[PL_KEY]))
        self.assertTrue(is_power_event(room.state[JR_KEY]))
        self.assertTrue(is_power_event(room.create))
        self.assertTrue(is_power_event(room.member(CAROL, "leave", sender=BOB)))
        self.assertTrue(is_power_event(room.member(CAROL, "ban", sender=BOB)))
        self.assertFalse(is_power_event(room.member(CAROL, "leave")))
        self.assertFalse(is_power_event(room.member(DAVE, "invite", sender=CAROL)))
        self.assertFalse(is_power_event(room.event(MESSAGE, CAROL, {})))
        self.assertFalse(is_power_event(room.event("m.room.topic", CAROL, {}, state_key="")))
        self.assertFalse(is_power_event(room.event(PL, CAROL, {}, state_key="x")))


class V10Rules(_EveryVersion, unittest.TestCase):
    version = V10


class V11Rules(_EveryVersion, unittest.TestCase):
    version = V11


class V12Rules(_EveryVersion, unittest.TestCase):
    version = V12


class SelectionTests(unittest.TestCase):
    def test_message_selection(self):
        self.assertEqual(auth_types_for_event(V11, MESSAGE, CAROL, None, {}),
                         [CREATE_KEY, PL_KEY, (MEMBER, CAROL)])
        self.assertEqual(auth_types_for_event(V10, "m.room.topic", CAROL, "", {}),
                         [CREATE_KEY, PL_KEY, (MEMBER, CAROL)])

    def test_v12_never_selects_the_create_event(self):
        self.assertEqual(auth_types_for_event(V12, MESSAGE, CAROL, None, {}), [PL_KEY, (MEMBER, CAROL)])

    def test_create_selects_nothing(self):
        for version in (V10, V11, V12):
            self.assertEqual(auth_types_for_event(version, CREATE, ALICE, "", {}), [])

    def test_member_selection(self):
        for membership in ("join", "invite", "knock"):
            self.assertEqual(auth_types_for_event(V11, MEMBER, CAROL, DAVE, {"membership": membership}),
                             [CREATE_KEY, PL_KEY, (MEMBER, CAROL), (MEMBER, DAVE), JR_KEY])
        for membership in ("leave", "ban"):
            self.assertEqual(auth_types_for_event(V11, MEMBER, CAROL, DAVE, {"membership": membership}),
                             [CREATE_KEY, PL_KEY, (MEMBER, CAROL), (MEMBER, DAVE)])

    def test_own_membership_listed_once(self):
        self.assertEqual(auth_types_for_event(V12, MEMBER, DAVE, DAVE, {"membership": "join"}),
                         [PL_KEY, (MEMBER, DAVE), JR_KEY])

    def test_third_party_invite_selection(self):
        content = {"membership": "invite", "third_party_invite": {"signed": {"token": "tok", "mxid": DAVE}}}
        self.assertEqual(auth_types_for_event(V11, MEMBER, CAROL, DAVE, content),
                         [CREATE_KEY, PL_KEY, (MEMBER, CAROL), (MEMBER, DAVE), JR_KEY, (TPI, "tok")])

    def test_authoriser_selection(self):
        content = {"membership": "join", "join_authorised_via_users_server": BOB}
        self.assertEqual(auth_types_for_event(V12, MEMBER, DAVE, DAVE, content),
                         [PL_KEY, (MEMBER, DAVE), JR_KEY, (MEMBER, BOB)])
        leave = {"membership": "leave", "join_authorised_via_users_server": BOB}
        self.assertEqual(auth_types_for_event(V12, MEMBER, DAVE, DAVE, leave), [PL_KEY, (MEMBER, DAVE)])

    def test_malformed_content_does_not_raise(self):
        for content in ({"membership": ["join"]}, {"membership": "invite", "third_party_invite": "x"},
                        {"membership": "invite", "third_party_invite": {"signed": {"token": 5}}},
                        {"membership": "join", "join_authorised_via_users_server": {"a": 1}}):
            types = auth_types_for_event(V11, MEMBER, DAVE, DAVE, content)
            self.assertEqual(types[:3], [CREATE_KEY, PL_KEY, (MEMBER, DAVE)])
            self.assertEqual(len(types), len(set(types)))
        self.assertEqual(auth_types_for_event(V11, MEMBER, DAVE, None, {}), [CREATE_KEY, PL_KEY, (MEMBER, DAVE)])


class V10AndV11Specifics(_AuthAssertions, unittest.TestCase):
    def test_create_room_id_domain_must_match_sender(self):
        for version in (V10, V11):
            room = Room(version)
            pdu = dict(room.create.pdu, room_id="!room:elsewhere.test")
            self.refused(room, Event(pdu, version, "$c"), "room_id domain")
            pdu = dict(room.create.pdu)
            del pdu["room_id"]
            self.refused(room, Event(pdu, version, "$c"), "room_id domain")

    def test_auth_events_without_create_refused(self):
        for version in (V10, V11):
            room = standard_room(version)
            cited = [e for e in room.cited(room.event(MESSAGE, CAROL, {})) if e.type != CREATE]
            event = room.event(MESSAGE, CAROL, {}, auth=[e.event_id for e in cited])
            self.refused_auth_events(room, event, cited, "no m.room.create")

    def test_power_levels_may_list_the_creator(self):
        for version in (V10, V11):
            room = standard_room(version)
            self.allowed(room, room.event(PL, ALICE, {"users": {ALICE: 100, BOB: 50}}, state_key=""))

    def test_additional_creators_are_ignored(self):
        for version in (V10, V11):
            room = Room(version, extra_create_content={"additional_creators": "not even a list"})
            self.allowed(room, room.create)
            self.assertNotIn(BOB, creators(version, room.create))


class V10Specifics(_AuthAssertions, unittest.TestCase):
    def test_create_without_creator_refused(self):
        room = Room(V10, creator=None)
        self.refused(room, room.create, "no creator")

    def test_creator_comes_from_content(self):
        # Bob sends the create event naming Alice as the creator.
        room = Room(V10, sender=BOB, creator=ALICE)
        self.assertEqual(creators(V10, room.create), frozenset({ALICE}))
        self.assertEqual(user_power_level(V10, room.state, ALICE), 100)
        self.assertEqual(user_power_level(V10, room.state, BOB), 0)
        self.allowed(room, room.member(ALICE, "join"))
        self.refused(room, room.member(BOB, "join"), "not invited")

    def test_stringy_power_levels_refused(self):
        room = standard_room(V10)
        self.refused(room, room.event(PL, ALICE, {"users": {ALICE: "100"}}, state_key=""), "users is not")
        self.refused(room, room.event(PL, ALICE, {"users": {ALICE: 100}, "ban": "50"}, state_key=""),
                     "ban is not an integer")
        self.refused(room, room.event(PL, ALICE, {"users": {ALICE: 100}, "events": {"x": "1"}}, state_key=""),
                     "events is not")


class V11Specifics(_AuthAssertions, unittest.TestCase):
    def test_create_without_creator_allowed(self):
        room = Room(V11)
        self.assertNotIn("creator", room.create.content)
        self.allowed(room, room.create)

    def test_creator_comes_from_sender(self):
        # content.creator means nothing any more.
        room = Room(V11, sender=BOB, extra_create_content={"creator": ALICE})
        self.assertEqual(creators(V11, room.create), frozenset({BOB}))
        self.assertEqual(user_power_level(V11, room.state, BOB), 100)
        self.assertEqual(user_power_level(V11, room.state, ALICE), 0)
        self.allowed(room, room.member(BOB, "join"))
        self.refused(room, room.member(ALICE, "join"), "not invited")


class V12Specifics(_AuthAssertions, unittest.TestCase):
    def room(self, **extra: Any) -> Room:
        room = Room(V12, extra_create_content=extra or None)
        room.set_member(ALICE, "join")
        room.set_state(PL, ALICE, {"users": {CAROL: 100}, "events": {PL: 100}})
        room.set_state(JOIN_RULES, ALICE, {"join_rule": "public"})
        for user in (BOB, CAROL):
            room.set_member(user, "join")
        return room

    def test_create_with_room_id_refused(self):
        room = Room(V12)
        pdu = dict(room.create.pdu, room_id="!room:a.test")
        self.refused(room, Event(pdu, V12, "$c"), "has a room_id")

    def test_room_id_derives_from_create(self):
        room = Room(V12)
        self.assertEqual(room.room_id, "!" + room.create.event_id[1:])

    def test_additional_creators_validated(self):
        for value in ("@bob:b.test", [BOB, 5], ["bob"], ["@bob"], ["@bob:bad host"], [BOB, "@" + "x" * 260 + ":b"]):
            room = Room(V12, extra_create_content={"additional_creators": value})
            self.refused(room, room.create, "additional_creators")
        room = Room(V12, extra_create_content={"additional_creators": [BOB, "@x:[::1]:80"]})
        self.allowed(room, room.create)
        room = Room(V12, extra_create_content={"additional_creators": []})
        self.allowed(room, room.create)

    def test_creators_include_additional_creators(self):
        room = Room(V12, extra_create_content={"additional_creators": [BOB]})
        self.assertEqual(creators(V12, room.create), frozenset({ALICE, BOB}))

    def test_creators_have_infinite_power(self):
        room = self.room(additional_creators=[BOB])
        for user in (ALICE, BOB):
            self.assertEqual(user_power_level(V12, room.state, user), float("inf"))
        self.assertEqual(user_power_level(V12, room.state, CAROL), 100)
        # A creator outranks a 100 user; nobody can remove a creator, not even another creator.
        self.allowed(room, room.member(CAROL, "ban", sender=BOB))
        self.refused(room, room.member(ALICE, "leave", sender=CAROL), "not below")
        self.refused(room, room.member(ALICE, "ban", sender=BOB), "not below")

    def test_creator_may_set_any_level(self):
        room = self.room()
        self.allowed(room, room.event(PL, ALICE, {"users": {CAROL: 2 ** 53 - 1}, "ban": 2 ** 53 - 1}, state_key=""))

    def test_power_levels_listing_a_creator_refused(self):
        room = self.room(additional_creators=[BOB])
        self.refused(room, room.event(PL, ALICE, {"users": {ALICE: 100}}, state_key=""), "must not list a room creator")
        self.refused(room, room.event(PL, ALICE, {"users": {BOB: 100}}, state_key=""), "must not list a room creator")
        self.allowed(room, room.event(PL, ALICE, {"users": {CAROL: 50}}, state_key=""))

    def test_first_power_levels_listing_the_creator_refused(self):
        room = Room(V12)
        room.set_member(ALICE, "join")
        self.refused(room, room.event(PL, ALICE, {"users": {ALICE: 100}}, state_key=""), "room creator")

    def test_additional_creator_first_join_needs_an_invite(self):
        room = Room(V12, extra_create_content={"additional_creators": [BOB]})
        self.refused(room, room.member(BOB, "join"), "not invited")
        self.allowed(room, room.member(ALICE, "join"))

    def test_auth_events_with_create_alongside_allowed(self):
        room = self.room()
        event = with_auth(room, room.event(MESSAGE, BOB, {}))
        self.assertNotIn(room.create.event_id, event.auth_event_ids)
        check_auth_events(V12, event, room.cited(event) + [room.create])

    def test_auth_events_citing_create_refused(self):
        room = self.room()
        cited = room.cited(room.event(MESSAGE, BOB, {})) + [room.create]
        event = room.event(MESSAGE, BOB, {}, auth=[e.event_id for e in cited])
        self.refused_auth_events(room, event, cited, "does not pick")

    def test_room_id_not_naming_create_refused(self):
        room = self.room()
        event = room.event(MESSAGE, BOB, {}, room_id="!somewhere-else")
        self.refused_auth_events(room, event, [room.create], "room_id is not the ID")

    def test_create_not_supplied_refused(self):
        room = self.room()
        event = with_auth(room, room.event(MESSAGE, BOB, {}))
        self.refused_auth_events(room, event, room.cited(event), "create event was not supplied")

    def test_rejected_create_refused(self):
        room = self.room()
        event = with_auth(room, room.event(MESSAGE, BOB, {}))
        room.create.rejected_reason = "bad"
        self.refused_auth_events(room, event, room.cited(event) + [room.create], "create event was rejected")

    def test_no_power_levels_event_gives_others_zero(self):
        room = Room(V12, extra_create_content={"additional_creators": [BOB]})
        self.assertEqual(user_power_level(V12, room.state, CAROL), 0)
        self.assertEqual(user_power_level(V12, room.state, BOB), float("inf"))


class UserIdTests(unittest.TestCase):
    def test_valid(self):
        for user_id in (ALICE, "@a:1.2.3.4:8448", "@a:[1234:5678::abcd]", "@:empty.test", "@Ünï cödé:x.test"):
            self.assertTrue(is_valid_user_id(user_id), user_id)

    def test_invalid(self):
        for user_id in (None, 5, "alice:a.test", "@alice", "@a:", "@a:host:port", "@a:x.test:123456",
                        "@a\x00:x.test", "@a:" + "x" * 260, "@\ud800:x.test"):
            self.assertFalse(is_valid_user_id(user_id), repr(user_id))
