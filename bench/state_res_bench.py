#!/usr/bin/env python3
"""State resolution benchmark: time ``resolve_state`` on a synthetic room with two big forks.

The room: create, the creator's join, power levels, public join rules, N members joining.
Then two forks each set N/2 state events on the same N/2 keys, so N events conflict:
topic, name, custom state (some by a moderator, whom fork B promotes first), members
changing their display name, and on fork B the creator kicking some of them (power events).

Only ``resolve_state`` is timed (the median of a few runs); building the room is not.

    .venv/bin/python bench/state_res_bench.py [--sizes 1000 10000] [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from homeserver.events.event import Event  # noqa: E402
from homeserver.events.room_versions import V11, V12, RoomVersion  # noqa: E402
from homeserver.events.state_res import resolve_state  # noqa: E402

CREATOR = "@creator:bench.example"
MODERATOR = "@moderator:bench.example"
CUSTOM_TYPE = "org.drocsid.bench"

StateMap = dict[tuple[str, str], str]


def member(index: int) -> str:
    return f"@user{index}:bench.example"


class SyntheticRoom:
    """Events with made-up IDs, cited the way the room version wants."""

    def __init__(self, version: RoomVersion):
        self.version = version
        self.events: dict[str, Event] = {}
        self._clock = 0
        self.room_id = "!bench-create" if version.room_id_from_create else "!bench:bench.example"
        self.create = self.add("bench-create", "m.room.create", CREATOR,
                               {"room_version": version.identifier}, "")

    def add(self, name: str, event_type: str, sender: str, content: dict[str, Any], state_key: str,
            auth: tuple[str, ...] = (), prev: tuple[str, ...] = ()) -> str:
        event_id = "$" + name
        self._clock += 1
        is_create = event_type == "m.room.create"
        cites_create = self.version.create_in_auth_events and not is_create
        pdu: dict[str, Any] = {
            "type": event_type, "sender": sender, "content": content, "state_key": state_key,
            "origin_server_ts": self._clock, "prev_events": list(prev), "depth": self._clock,
            "auth_events": [self.create, *auth] if cites_create else list(auth),
        }
        if not (is_create and self.version.room_id_from_create):
            pdu["room_id"] = self.room_id
        self.events[event_id] = Event(pdu, self.version, event_id)
        return event_id

    def membership(self, name: str, user: str, content: dict[str, Any], auth: tuple[str, ...],
                   sender: str | None = None, prev: tuple[str, ...] = ()) -> str:
        return self.add(name, "m.room.member", sender or user, content, user, auth, prev)

    def power_levels(self, name: str, users: dict[str, int], auth: tuple[str, ...]) -> str:
        if self.version.infinite_creator_power:
            users = {user: level for user, level in users.items() if user != CREATOR}
        return self.add(name, "m.room.power_levels", CREATOR, {"users": users}, "", auth)

    def state(self, event_ids) -> StateMap:
        return {self.events[eid].state_tuple: eid for eid in event_ids}


@dataclass
class Cited:
    """The events a fork's events cite as auth events."""
    power: str
    creator: str
    moderator: str
    rules: str
    joins: list[str]


def build_room(version: RoomVersion, conflicting: int) -> tuple[SyntheticRoom, list[StateMap]]:
    room = SyntheticRoom(version)
    joined = {"membership": "join"}
    creator = room.membership("creator-join", CREATOR, joined, (), prev=(room.create,))
    power = room.power_levels("power", {CREATOR: 100, MODERATOR: 50}, (creator,))
    rules = room.add("join-rules", "m.room.join_rules", CREATOR, {"join_rule": "public"}, "",
                     (power, creator))
    moderator = room.membership("moderator-join", MODERATOR, joined, (power, rules))
    joins = [room.membership(f"join{i}", member(i), joined, (power, rules))
             for i in range(conflicting)]
    base = room.state([room.create, creator, power, rules, moderator, *joins])

    promoted = room.power_levels("power-b", {CREATOR: 100, MODERATOR: 75}, (power, creator))
    fork_events: dict[str, list[str]] = {"a": [], "b": [promoted]}
    for fork, levels in (("a", power), ("b", promoted)):
        cited = Cited(levels, creator, moderator, rules, joins)
        fork_events[fork].extend(_fork_event(room, fork, slot, cited)
                                 for slot in range(conflicting // 2))
    return room, [{**base, **room.state(events)} for events in fork_events.values()]


def _fork_event(room: SyntheticRoom, fork: str, slot: int, cited: Cited) -> str:
    """The fork's event for conflict slot ``slot``; both forks use the same key per slot."""
    name = f"{fork}{slot}"
    if slot == 0:
        return room.add(name, "m.room.topic", CREATOR, {"topic": name}, "",
                        (cited.power, cited.creator))
    if slot == 1:
        return room.add(name, "m.room.name", MODERATOR, {"name": name}, "",
                        (cited.power, cited.moderator))
    kind = slot % 4
    if kind in (0, 1):
        # Fork A's custom state is the creator's, fork B's the (promoted) moderator's.
        sender, sender_join = ((CREATOR, cited.creator) if fork == "a"
                               else (MODERATOR, cited.moderator))
        return room.add(name, CUSTOM_TYPE, sender, {"value": name}, f"k{slot}",
                        (cited.power, sender_join))
    user, own_join = member(slot), cited.joins[slot]
    if kind == 3 and fork == "b":
        # A kick: a power event, replayed before everything else.
        return room.membership(name, user, {"membership": "leave"},
                               (cited.power, cited.creator, own_join), sender=CREATOR)
    return room.membership(name, user, {"membership": "join", "displayname": name},
                           (cited.power, own_join, cited.rules))


def time_resolution(version: RoomVersion, conflicting: int, runs: int) -> float:
    room, states = build_room(version, conflicting)
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        resolved = resolve_state(version, states, room.events.__getitem__)
        timings.append(time.perf_counter() - started)
    # Cheap sanity check: one of the forks' topics won.
    assert resolved[("m.room.topic", "")] in ("$a0", "$b0"), resolved[("m.room.topic", "")]
    return statistics.median(timings)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000],
                        help="numbers of conflicting events")
    parser.add_argument("--runs", type=int, default=3, help="runs per cell; the median is printed")
    args = parser.parse_args(argv)

    versions = ((V11, "v11 (state res v2)"), (V12, "v12 (state res v2.1)"))
    print(f"{'conflicting events':>18}  " + "  ".join(f"{label:>20}" for _, label in versions))
    for size in args.sizes:
        cells = [f"{time_resolution(version, size, args.runs):>19.3f}s" for version, _ in versions]
        print(f"{size:>18}  " + "  ".join(cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
