"""State resolution v2 (room v11) and v2.1 (room v12) on small hand-built auth DAGs.

Each scenario builds its room for the version under test: v11 events cite the create
event and the room ID is arbitrary; v12 events never cite it, the room ID is derived from
its event ID, and Alice (the creator) has infinite power and is absent from power levels.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from twisted.trial import unittest

from homeserver.events.event import Event
from homeserver.events.room_versions import V11, V12, RoomVersion
from homeserver.events.state_res import resolve_state, split_state_sets

try:
    from hypothesis import given, settings, strategies as st
except ImportError:  # comes with the project's test extra
    given = None

ALICE = "@alice:example.com"
BOB = "@bob:example.com"
CHARLIE = "@charlie:example.com"
EVELYN = "@evelyn:example.com"
FRANK = "@frank:example.com"
ZARA = "@zara:example.com"

CREATE = ("m.room.create", "")
JOIN_RULES = ("m.room.join_rules", "")
TOPIC = ("m.room.topic", "")

VERSIONS = (V11, V12)


def member_key(user: str) -> tuple[str, str]:
    return ("m.room.member", user)


def with_algorithm(version: RoomVersion, state_res: str) -> RoomVersion:
    """The room version with another state resolution, to isolate what the algorithm changes."""
    return dataclasses.replace(version, state_res=state_res)


class Room:
    """A room's events built by hand: explicit IDs, auth_events, prev_events and timestamps.

    ``auth`` lists never name the create event; it is added for versions that cite it.
    Timestamps increase in creation order unless given.
    """

    def __init__(self, version: RoomVersion):
        self.version = version
        self.events: dict[str, Event] = {}
        self._clock = 0
        self.room_id = "!CREATE" if version.room_id_from_create else "!room:example.com"
        self.create = self.add("CREATE", "m.room.create", ALICE,
                               {"room_version": version.identifier}, state_key="")

    def add(self, name: str, event_type: str, sender: str, content: dict[str, Any], *,
            state_key: str | None = None, auth: tuple[str, ...] = (), prev: tuple[str, ...] = (),
            ts: int | None = None) -> str:
        event_id = "$" + name
        assert event_id not in self.events, event_id
        is_create = event_type == "m.room.create"
        self._clock += 1
        pdu: dict[str, Any] = {
            "type": event_type, "sender": sender, "content": content,
            "origin_server_ts": self._clock if ts is None else ts,
            "prev_events": list(prev), "auth_events": self._auth_ids(auth, is_create), "depth": 1,
        }
        if state_key is not None:
            pdu["state_key"] = state_key
        if not (is_create and self.version.room_id_from_create):
            pdu["room_id"] = self.room_id
        self.events[event_id] = Event(pdu, self.version, event_id)
        return event_id

    def _auth_ids(self, auth: tuple[str, ...], is_create: bool) -> list[str]:
        if is_create or not self.version.create_in_auth_events:
            return list(auth)
        return [self.create, *auth]

    def member(self, name: str, user: str, membership: str, *, sender: str | None = None,
               auth: tuple[str, ...], prev: tuple[str, ...] = (), ts: int | None = None,
               **extra: Any) -> str:
        return self.add(name, "m.room.member", sender or user, {"membership": membership, **extra},
                        state_key=user, auth=auth, prev=prev, ts=ts)

    def power_levels(self, name: str, sender: str, users: dict[str, int], *, auth: tuple[str, ...],
                     ts: int | None = None) -> str:
        # v12 creators have infinite power and must not be listed.
        if self.version.infinite_creator_power:
            users = {user: level for user, level in users.items() if user != ALICE}
        return self.add(name, "m.room.power_levels", sender, {"users": users}, state_key="",
                        auth=auth, ts=ts)

    def topic(self, name: str, sender: str, text: str, *, auth: tuple[str, ...],
              ts: int | None = None) -> str:
        return self.add(name, "m.room.topic", sender, {"topic": text}, state_key="",
                        auth=auth, ts=ts)

    def join_rule(self, name: str, rule: str, *, auth: tuple[str, ...],
                  ts: int | None = None) -> str:
        return self.add(name, "m.room.join_rules", ALICE, {"join_rule": rule}, state_key="",
                        auth=auth, ts=ts)

    def key_of(self, event_id: str) -> tuple[str, str]:
        return self.events[event_id].state_tuple

    def state(self, *event_ids: str) -> dict[tuple[str, str], str]:
        return {self.key_of(event_id): event_id for event_id in event_ids}

    def resolve(self, state_sets, version: RoomVersion | None = None) -> dict[tuple[str, str], str]:
        return resolve_state(version or self.version, state_sets, self.events.__getitem__)


def initial_room(version: RoomVersion) -> tuple[Room, dict[tuple[str, str], str]]:
    """Alice creates a public room; Bob, Charlie, Evelyn and Zara join. Only Alice has power."""
    room = Room(version)
    alice = room.member("IMA", ALICE, "join", auth=(), prev=(room.create,))
    power = room.power_levels("IPOWER", ALICE, {ALICE: 100}, auth=(alice,))
    rules = room.join_rule("IJR", "public", auth=(power, alice))
    joins = [room.member(f"IM{user[1].upper()}", user, "join", auth=(power, rules))
             for user in (BOB, CHARLIE, EVELYN, ZARA)]
    return room, room.state(room.create, alice, power, rules, *joins)


# -- scenarios: each returns (room, state_sets, expected) -------------------------------------

def ban_vs_power_levels(version: RoomVersion):
    """Bob bans Evelyn while Alice takes Bob's power away; Alice outranks Bob, so the ban loses."""
    room, base = initial_room(version)
    promoted = room.power_levels("PA", ALICE, {ALICE: 100, BOB: 50}, auth=("$IPOWER", "$IMA"))
    ban = room.member("BAN", EVELYN, "ban", sender=BOB, auth=(promoted, "$IMB", "$IME"))
    demoted = room.power_levels("PB", ALICE, {ALICE: 100}, auth=(promoted, "$IMA"))
    with_ban = {**base, **room.state(promoted, ban)}
    with_demotion = {**base, **room.state(demoted)}
    return room, [with_ban, with_demotion], with_demotion


def topic_conflict(version: RoomVersion, bob_later: bool = True):
    """Alice and Bob set the topic at once, under the same power levels: the later one wins."""
    room, base = initial_room(version)
    promoted = room.power_levels("PA", ALICE, {ALICE: 100, BOB: 50}, auth=("$IPOWER", "$IMA"))
    alice_ts, bob_ts = (10, 20) if bob_later else (20, 10)
    by_alice = room.topic("TA", ALICE, "Alice's", auth=(promoted, "$IMA"), ts=alice_ts)
    by_bob = room.topic("TB", BOB, "Bob's", auth=(promoted, "$IMB"), ts=bob_ts)
    base = {**base, **room.state(promoted)}
    states = [{**base, **room.state(by_alice)}, {**base, **room.state(by_bob)}]
    return room, states, {**base, **room.state(by_bob if bob_later else by_alice)}


def join_rule_conflict(version: RoomVersion):
    """Frank joins under the old public rule as Alice makes the room invite-only: he stays out."""
    room, base = initial_room(version)
    invite_only = room.join_rule("JR2", "invite", auth=("$IPOWER", "$IMA"))
    frank = room.member("IMF", FRANK, "join", auth=("$IPOWER", "$IJR"))
    closed = {**base, **room.state(invite_only)}
    joined = {**base, **room.state(frank)}
    return room, [closed, joined], closed


def mainline_sort(version: RoomVersion):
    """Two topics by Bob: the one citing newer power levels wins despite its earlier timestamp."""
    room, base = initial_room(version)
    first = room.power_levels("PA", ALICE, {ALICE: 100, BOB: 50}, auth=("$IPOWER", "$IMA"))
    second = room.power_levels("PA2", ALICE, {ALICE: 100, BOB: 50, CHARLIE: 50},
                               auth=(first, "$IMA"))
    newer_epoch = room.topic("TA", BOB, "under PA2", auth=(second, "$IMB"), ts=100)
    older_epoch = room.topic("TB", BOB, "under PA", auth=(first, "$IMB"), ts=200)
    states = [{**base, **room.state(second, newer_epoch)},
              {**base, **room.state(first, older_epoch)}]
    return room, states, {**base, **room.state(second, newer_epoch)}


def self_demotion(version: RoomVersion, demotion_first: bool):
    """Bob, an admin, demotes himself to 50 while banning Frank (50): whichever came first counts.

    Frank is only invited, by Alice: his member event is conflicted and the ban cites it,
    so it must sort early (a powerful sender) for the ban and the demotion to race on
    their timestamps alone.
    """
    room, base = initial_room(version)
    invited = room.member("INVF", FRANK, "invite", sender=ALICE, auth=("$IPOWER", "$IMA", "$IJR"))
    admins = room.power_levels("PA", ALICE, {ALICE: 100, BOB: 100, FRANK: 50},
                               auth=("$IPOWER", "$IMA"))
    demotion_ts, ban_ts = (100, 200) if demotion_first else (200, 100)
    demoted = room.power_levels("PD", BOB, {ALICE: 100, BOB: 50, FRANK: 50}, auth=(admins, "$IMB"),
                                ts=demotion_ts)
    ban = room.member("BAN", FRANK, "ban", sender=BOB, auth=(admins, "$IMB", invited), ts=ban_ts)
    states = [{**base, **room.state(invited, demoted)}, {**base, **room.state(admins, ban)}]
    return room, states, {**base, **room.state(demoted, ban if not demotion_first else invited)}


def both_forks_change_power_levels(version: RoomVersion):
    """Alice promotes Charlie; Bob (50) promotes Zara from the older levels; each sets a topic.

    Alice's change is replayed first (she outranks Bob) and Bob's then fails: it would drop
    Charlie, whose level is not below Bob's. Zara's topic fails with it; Charlie's stands.
    """
    room, base = initial_room(version)
    base_levels = room.power_levels("PA", ALICE, {ALICE: 100, BOB: 50}, auth=("$IPOWER", "$IMA"))
    by_alice = room.power_levels("PLA", ALICE, {ALICE: 100, BOB: 50, CHARLIE: 50},
                                 auth=(base_levels, "$IMA"), ts=100)
    by_bob = room.power_levels("PLB", BOB, {ALICE: 100, BOB: 50, ZARA: 50},
                               auth=(base_levels, "$IMB"), ts=50)
    charlie_topic = room.topic("TC", CHARLIE, "Charlie's", auth=(by_alice, "$IMC"), ts=110)
    zara_topic = room.topic("TZ", ZARA, "Zara's", auth=(by_bob, "$IMZ"), ts=120)
    states = [{**base, **room.state(by_alice, charlie_topic)},
              {**base, **room.state(by_bob, zara_topic)}]
    return room, states, {**base, **room.state(by_alice, charlie_topic)}


def join_rules_reset(version: RoomVersion):
    """Alice makes the room invite-only and leaves; a bogus fork still shows the public rule.

    v2 replays both rules on top of Alice having left, refuses both, and loses the join
    rules altogether. v2.1 replays from nothing, so Alice's own join authorises her rules.
    """
    room, base = initial_room(version)
    invite_only = room.join_rule("JR2", "invite", auth=("$IPOWER", "$IMA"))
    alice_left = room.member("ALEAVE", ALICE, "leave", auth=("$IPOWER", "$IMA"))
    correct = {**base, **room.state(invite_only, alice_left)}
    bogus = {**base, **room.state(alice_left)}
    reset = {**base, **room.state(alice_left)}
    del reset[JOIN_RULES]
    return room, [correct, bogus], {"v2": reset, "v2.1": correct}


def conflicted_subgraph_replay(version: RoomVersion):
    """Evelyn's rename cites the original power levels though her join cites newer ones.

    A fork after the rename carries the original power levels. v2 does not replay the
    power levels between the two (they are in every auth chain) and resets to the
    original; v2.1 replays the whole path between the conflicted events and keeps Bob's.
    """
    room, base = initial_room(version)
    bob_mod = room.power_levels("P2", ALICE, {ALICE: 100, BOB: 50}, auth=("$IPOWER", "$IMA"))
    charlie_mod = room.power_levels("P3", BOB, {ALICE: 100, BOB: 50, CHARLIE: 50},
                                    auth=(bob_mod, "$IMB"))
    evelyn_joins = room.member("ME1", EVELYN, "join", auth=(charlie_mod, "$IJR", "$IME"))
    evelyn_renames = room.member("ME2", EVELYN, "join", auth=("$IPOWER", "$IJR", evelyn_joins),
                                 displayname="Eve")
    frank_joins = room.member("MF", FRANK, "join", auth=(charlie_mod, "$IJR"))
    dodgy = {**base, **room.state(evelyn_renames)}
    sensible = {**base, **room.state(charlie_mod, frank_joins)}
    v2_result = {**base, **room.state(evelyn_renames, frank_joins)}
    v21_result = {**base, **room.state(charlie_mod, evelyn_joins, frank_joins)}
    return room, [dodgy, sensible], {"v2": v2_result, "v2.1": v21_result}


def rejected_auth_event(version: RoomVersion, rejected: bool):
    """Evelyn (50) renames herself and sets the topic citing the rename; Bob's topic competes.

    The rename is in the auth difference, so it is replayed, but when it is marked rejected
    neither the replayed state nor Evelyn's auth events may vouch for her membership.
    """
    room, base = initial_room(version)
    mods = room.power_levels("PA", ALICE, {ALICE: 100, BOB: 50, EVELYN: 50},
                             auth=("$IPOWER", "$IMA"))
    rename = room.member("ME2", EVELYN, "join", auth=(mods, "$IJR", "$IME"), displayname="Eve")
    room.events[rename].rejected_reason = "auth" if rejected else None
    by_bob = room.topic("TB", BOB, "Bob's", auth=(mods, "$IMB"), ts=100)
    by_evelyn = room.topic("TE", EVELYN, "Evelyn's", auth=(mods, rename), ts=200)
    base = {**base, **room.state(mods)}
    states = [{**base, **room.state(by_bob)}, {**base, **room.state(by_evelyn)}]
    return room, states, {**base, **room.state(by_bob if rejected else by_evelyn)}


# Every DAG above, for the order-independence property.
ALL_SCENARIOS = {
    "ban_vs_power_levels": ban_vs_power_levels,
    "topic_conflict": topic_conflict,
    "join_rule_conflict": join_rule_conflict,
    "mainline_sort": mainline_sort,
    "self_demotion_first": lambda version: self_demotion(version, demotion_first=True),
    "self_demotion_last": lambda version: self_demotion(version, demotion_first=False),
    "both_forks_change_power_levels": both_forks_change_power_levels,
    "join_rules_reset": join_rules_reset,
    "conflicted_subgraph_replay": conflicted_subgraph_replay,
    "rejected_auth_event": lambda version: rejected_auth_event(version, rejected=True),
}


class ScenarioCase(unittest.TestCase):
    def check(self, scenario, version: RoomVersion) -> None:
        room, state_sets, expected = scenario(version)
        self.assertEqual(room.resolve(state_sets), expected, f"room version {version.identifier}")


class ScenarioTests(ScenarioCase):
    def test_ban_vs_power_levels(self):
        for version in VERSIONS:
            self.check(ban_vs_power_levels, version)

    def test_topic_conflict_later_timestamp_wins(self):
        for version in VERSIONS:
            self.check(topic_conflict, version)
            self.check(lambda v: topic_conflict(v, bob_later=False), version)

    def test_join_rule_conflict_keeps_the_racing_joiner_out(self):
        for version in VERSIONS:
            self.check(join_rule_conflict, version)

    def test_mainline_sort_prefers_the_newer_power_levels(self):
        for version in VERSIONS:
            self.check(mainline_sort, version)

    def test_self_demotion_before_the_ban_stops_it(self):
        for version in VERSIONS:
            self.check(lambda v: self_demotion(v, demotion_first=True), version)

    def test_self_demotion_after_the_ban_lets_it_stand(self):
        for version in VERSIONS:
            self.check(lambda v: self_demotion(v, demotion_first=False), version)

    def test_both_forks_change_power_levels(self):
        for version in VERSIONS:
            self.check(both_forks_change_power_levels, version)


class AlgorithmDifferenceTests(unittest.TestCase):
    """The same DAG resolved with v2 and with v2.1, on v11-shaped and v12-shaped rooms."""

    def check(self, scenario) -> None:
        for version in VERSIONS:
            room, state_sets, expected = scenario(version)
            for algorithm in ("v2", "v2.1"):
                resolved = room.resolve(state_sets, with_algorithm(version, algorithm))
                self.assertEqual(resolved, expected[algorithm],
                                 f"room version {version.identifier}, state res {algorithm}")
        self.assertNotEqual(expected["v2"], expected["v2.1"])

    def test_join_rules_reset_only_in_v2(self):
        self.check(join_rules_reset)

    def test_conflicted_subgraph_is_replayed_in_v21(self):
        self.check(conflicted_subgraph_replay)


class RejectedEventTests(ScenarioCase):
    def test_rejected_auth_events_are_not_used(self):
        for version in VERSIONS:
            self.check(lambda v: rejected_auth_event(v, rejected=True), version)

    def test_same_dag_without_the_rejection(self):
        for version in VERSIONS:
            self.check(lambda v: rejected_auth_event(v, rejected=False), version)

    def test_rejected_event_in_a_state_set_is_replayed_as_usual(self):
        for version in VERSIONS:
            room, state_sets, expected = topic_conflict(version)
            room.events[expected[TOPIC]].rejected_reason = "soft: state before it"
            self.assertEqual(room.resolve(state_sets), expected, version.identifier)


class EdgeCaseTests(unittest.TestCase):
    def no_lookups(self, event_id: str) -> Event:
        raise AssertionError(f"looked up {event_id}")

    def test_nothing_to_resolve(self):
        self.assertEqual(resolve_state(V11, [], self.no_lookups), {})

    def test_one_state_set_is_returned_as_is(self):
        state = {CREATE: "$CREATE", TOPIC: "$T"}
        result = resolve_state(V11, [state], self.no_lookups)
        self.assertEqual(result, state)
        self.assertIsNot(result, state)

    def test_identical_state_sets_need_no_events(self):
        state = {CREATE: "$CREATE", TOPIC: "$T"}
        self.assertEqual(resolve_state(V12, [state, dict(state), dict(state)], self.no_lookups),
                         state)

    def test_split_counts_a_missing_key_as_conflicted(self):
        unconflicted, conflicted = split_state_sets([{CREATE: "$C", TOPIC: "$T1"}, {CREATE: "$C"},
                                                     {CREATE: "$C", TOPIC: "$T2"}])
        self.assertEqual(unconflicted, {CREATE: "$C"})
        self.assertEqual(conflicted, {"$T1", "$T2"})

    def test_unknown_auth_events_are_treated_as_absent(self):
        for version in VERSIONS:
            room, state_sets, expected = topic_conflict(version)
            room.events[expected[TOPIC]].auth_event_ids.append("$never-seen")
            self.assertEqual(room.resolve(state_sets), expected, version.identifier)

    def test_deep_power_levels_chain_needs_no_recursion(self):
        # 3,000 power levels changes in a row: auth chain, Kahn and mainline all that deep.
        for version in VERSIONS:
            room, base = initial_room(version)
            latest = "$IPOWER"
            for step in range(3000):
                levels = {ALICE: 100, BOB: 50, CHARLIE: step % 50}
                latest = room.power_levels(f"P{step}", ALICE, levels, auth=(latest, "$IMA"))
            topic = room.topic("T", BOB, "deep", auth=(latest, "$IMB"))
            states = [{**base, **room.state(latest, topic)}, {**base, **room.state("$P0")}]
            self.assertEqual(room.resolve(states), {**base, **room.state(latest, topic)},
                             version.identifier)


class OrderIndependenceTests(unittest.TestCase):
    """The result must not depend on the order of the state sets or of the event lookup's map."""

    def setUp(self):
        if given is None:
            raise unittest.SkipTest("hypothesis is not installed")

    if given is not None:
        @settings(max_examples=80, deadline=None)
        @given(scenario=st.sampled_from(sorted(ALL_SCENARIOS)), version=st.sampled_from(VERSIONS),
               data=st.data())
        def test_result_ignores_input_order(self, scenario, version, data):
            room, state_sets = ALL_SCENARIOS[scenario](version)[:2]
            # A third fork, the first without its topic, gives the permutations more to do.
            state_sets = [*state_sets, {k: v for k, v in state_sets[0].items() if k != TOPIC}]
            expected = room.resolve(state_sets)

            shuffled_sets = [dict(data.draw(st.permutations(list(state_set.items()))))
                             for state_set in data.draw(st.permutations(state_sets))]
            shuffled_events = {event_id: room.events[event_id]
                               for event_id in data.draw(st.permutations(list(room.events)))}
            self.assertEqual(resolve_state(version, shuffled_sets, shuffled_events.__getitem__),
                             expected)
