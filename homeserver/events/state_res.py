"""State resolution, versions 2 (rooms v10, v11) and 2.1 (room v12).

Pure and synchronous: state maps and a ``get_event`` lookup in, a resolved state map out.
The algorithm follows the spec's v2 state resolution; where the spec leaves room for
interpretation we do what Synapse does, so that servers converge on the same state.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence, Set

from homeserver.events.auth_events import auth_types_for_event
from homeserver.events.auth_rules import AuthError, check_auth, is_power_event, user_power_level
from homeserver.events.event import Event
from homeserver.events.room_versions import RoomVersion

__all__ = ["resolve_state", "split_state_sets"]

StateKey = tuple[str, str]
StateMap = Mapping[StateKey, str]

CREATE_KEY: StateKey = ("m.room.create", "")
POWER_LEVELS_KEY: StateKey = ("m.room.power_levels", "")


def resolve_state(version: RoomVersion, state_sets: Sequence[StateMap],
                  get_event: Callable[[str], Event]) -> dict[StateKey, str]:
    """The state of the room given the states after each of an event's prev_events.

    ``get_event`` must know every event in the state sets and, ideally, their auth
    chains; it raises ``KeyError`` for an event it does not know, which is then treated
    as absent.
    """
    if not state_sets:
        return {}
    first = state_sets[0]
    if all(state_set == first for state_set in state_sets[1:]):
        return dict(first)
    return _Resolution(version, state_sets, _EventGraph(get_event)).run()


def split_state_sets(state_sets: Sequence[StateMap]) -> tuple[dict[StateKey, str], set[str]]:
    """(unconflicted state map, conflicted event IDs).

    A key missing from some state set counts as conflicted, as in Synapse.
    """
    unconflicted: dict[StateKey, str] = {}
    conflicted: set[str] = set()
    keys = set().union(*state_sets)
    for key in keys:
        values = {state_set.get(key) for state_set in state_sets}
        if len(values) == 1:
            unconflicted[key] = values.pop()
        else:
            values.discard(None)
            conflicted.update(values)
    return unconflicted, conflicted


class _EventGraph:
    """Memoised access to events and their auth_events edges.

    Unknown events (``get_event`` raised ``KeyError``) are remembered as ``None`` and
    left out of every edge list.
    """

    def __init__(self, get_event: Callable[[str], Event]):
        self._get_event = get_event
        self._events: dict[str, Event | None] = {}
        self._auth_ids: dict[str, tuple[str, ...]] = {}
        self._power_levels_parent: dict[str, str | None] = {}

    def event(self, event_id: str) -> Event | None:
        try:
            return self._events[event_id]
        except KeyError:
            pass
        try:
            event = self._get_event(event_id)
        except KeyError:
            event = None
        self._events[event_id] = event
        return event

    def auth_ids(self, event_id: str) -> tuple[str, ...]:
        """The known auth events of an event, each once, in the order it cites them."""
        cached = self._auth_ids.get(event_id)
        if cached is None:
            event = self.event(event_id)
            cited = event.auth_event_ids if event is not None else ()
            cached = tuple(aid for aid in dict.fromkeys(cited) if self.event(aid) is not None)
            self._auth_ids[event_id] = cached
        return cached

    def auth_events(self, event_id: str) -> list[Event]:
        return [self._events[aid] for aid in self.auth_ids(event_id)]

    def power_levels_parent(self, event_id: str) -> str | None:
        """The power levels event among an event's auth events: one step along a mainline."""
        try:
            return self._power_levels_parent[event_id]
        except KeyError:
            pass
        parent = next((auth.event_id for auth in self.auth_events(event_id)
                       if (auth.type, auth.state_key) == POWER_LEVELS_KEY), None)
        self._power_levels_parent[event_id] = parent
        return parent

    def auth_closure(self, start_ids: Iterable[str], skip: Set[str] = frozenset()) -> set[str]:
        """The start events and all they reach through auth_events, never entering ``skip``."""
        seen: set[str] = set()
        stack = [eid for eid in start_ids if eid not in skip]
        while stack:
            event_id = stack.pop()
            if event_id in seen:
                continue
            seen.add(event_id)
            stack.extend(aid for aid in self.auth_ids(event_id)
                         if aid not in seen and aid not in skip)
        return seen


class _Resolution:
    """One run of the algorithm; holds the caches that make it linear-ish."""

    def __init__(self, version: RoomVersion, state_sets: Sequence[StateMap], graph: _EventGraph):
        self.version = version
        self.state_sets = state_sets
        self.graph = graph
        self._sender_power: dict[str, int | float] = {}
        self._create_ids = sorted({s[CREATE_KEY] for s in state_sets if CREATE_KEY in s})
        self._create_by_room: dict[str | None, Event | None] = {}

    def run(self) -> dict[StateKey, str]:
        unconflicted, conflicted = split_state_sets(self.state_sets)
        if not conflicted:
            return unconflicted

        full_conflicted = self._full_conflicted_set(unconflicted, conflicted)
        power_order = self._reverse_topological_power_order(full_conflicted)
        # v2.1 replays from nothing: only what the events' own auth events prove counts,
        # so a bogus unconflicted entry cannot lock out the conflicted events.
        base = {} if self.version.state_res == "v2.1" else unconflicted
        partial = self._iterative_auth_checks(power_order, base)

        replayed = set(power_order)
        leftovers = [eid for eid in full_conflicted if eid not in replayed]
        resolved = self._iterative_auth_checks(
            self._mainline_order(leftovers, partial.get(POWER_LEVELS_KEY)), partial)
        resolved.update(unconflicted)
        return resolved

    # -- which events take part -------------------------------------------------------------

    def _full_conflicted_set(self, unconflicted: StateMap, conflicted: set[str]) -> set[str]:
        full = conflicted | self._auth_difference(unconflicted)
        if self.version.state_res == "v2.1":
            full |= self._conflicted_subgraph(conflicted)
        # Events nobody can give us cannot be replayed.
        return {eid for eid in full if self.graph.event(eid) is not None}

    def _auth_difference(self, unconflicted: StateMap) -> set[str]:
        """Events in some but not all of the state sets' auth chains.

        Each set's chain includes the set's own events (as Synapse counts it). The chain
        below the unconflicted events is in every set's chain, so it is walked once and
        then fenced off; only what lies beyond it is walked per state set.
        """
        common = self.graph.auth_closure(unconflicted.values())
        unconflicted_ids = set(unconflicted.values())
        per_set = [self.graph.auth_closure(set(state_set.values()) - unconflicted_ids, skip=common)
                   for state_set in self.state_sets]
        return set().union(*per_set) - set.intersection(*per_set)

    def _conflicted_subgraph(self, conflicted: set[str]) -> set[str]:
        """Every event on an auth_events path from one conflicted event to another."""
        below = self.graph.auth_closure(conflicted)
        cited_by: dict[str, list[str]] = defaultdict(list)
        for event_id in below:
            for auth_id in self.graph.auth_ids(event_id):
                cited_by[auth_id].append(event_id)
        # Walking back up from the conflicted events, within what they reach, finds
        # exactly the events with a conflicted event both above and below them.
        on_path: set[str] = set()
        stack = list(conflicted)
        while stack:
            event_id = stack.pop()
            if event_id in on_path:
                continue
            on_path.add(event_id)
            stack.extend(citer for citer in cited_by[event_id] if citer not in on_path)
        return on_path

    # -- step 1: power events, oldest and most powerful first -------------------------------

    def _reverse_topological_power_order(self, full_conflicted: set[str]) -> list[str]:
        """The power events and their conflicted auth ancestors, sorted with Kahn's algorithm.

        Like Synapse, the walk down from a power event only passes through events of the
        full conflicted set, and only direct auth_events links between them are edges.
        """
        cites: dict[str, set[str]] = {}
        stack = [eid for eid in full_conflicted if is_power_event(self.graph.event(eid))]
        while stack:
            event_id = stack.pop()
            if event_id in cites:
                continue
            edges = {aid for aid in self.graph.auth_ids(event_id) if aid in full_conflicted}
            cites[event_id] = edges
            stack.extend(aid for aid in edges if aid not in cites)
        return _lexicographic_topological_sort(cites, self._power_sort_key)

    def _power_sort_key(self, event_id: str) -> tuple[int | float, int, str]:
        event = self.graph.event(event_id)
        return (-self._sender_power_level(event), event.origin_server_ts, event_id)

    def _sender_power_level(self, event: Event) -> int | float:
        """The sender's power level as the event's own auth events have it.

        Rejected auth events count here: rejection is a local verdict that can differ
        between servers, and the order must be the same everywhere.
        """
        level = self._sender_power.get(event.event_id)
        if level is None:
            auth_state = {(auth.type, auth.state_key): auth
                          for auth in self.graph.auth_events(event.event_id)}
            self._add_room_create(event, auth_state)
            level = user_power_level(self.version, auth_state, event.sender)
            self._sender_power[event.event_id] = level
        return level

    # -- steps 2 and 4: replay ---------------------------------------------------------------

    def _iterative_auth_checks(self, event_ids: Iterable[str],
                               base: StateMap) -> dict[StateKey, str]:
        # Rejected events are replayed like any other, as the spec says (Synapse skips them).
        state = dict(base)
        for event_id in event_ids:
            event = self.graph.event(event_id)
            if not event.is_state():
                continue
            try:
                check_auth(self.version, event, self._auth_state(event, state))
            except AuthError:
                continue
            state[event.state_tuple] = event_id
        return state

    def _auth_state(self, event: Event, state: StateMap) -> dict[StateKey, Event]:
        """What ``event`` is checked against: the replayed state, gaps filled from its auth events.

        Rejected events are never used here, from either source.
        """
        cited = {(auth.type, auth.state_key): auth
                 for auth in self.graph.auth_events(event.event_id) if not auth.rejected}
        auth_state: dict[StateKey, Event] = {}
        needed = auth_types_for_event(self.version, event.type, event.sender, event.state_key,
                                      event.content)
        for key in needed:
            chosen = self._usable_event(state.get(key)) or cited.get(key)
            if chosen is not None:
                auth_state[key] = chosen
        self._add_room_create(event, auth_state)
        return auth_state

    def _usable_event(self, event_id: str | None) -> Event | None:
        if event_id is None:
            return None
        event = self.graph.event(event_id)
        return event if event is not None and not event.rejected else None

    def _add_room_create(self, event: Event, auth_state: dict[StateKey, Event]) -> None:
        """v12 events do not cite the create event, yet their auth rules need it."""
        if self.version.create_in_auth_events or CREATE_KEY in auth_state:
            return
        create = self._room_create(event.room_id)
        if create is not None:
            auth_state[CREATE_KEY] = create

    def _room_create(self, room_id: str | None) -> Event | None:
        """The create event of the state sets that names ``room_id``.

        Nothing cites a v12 create event, so the state sets are the only place to find
        it; the room ID, a hash of the create event, picks the right one if they differ.
        """
        if room_id not in self._create_by_room:
            self._create_by_room[room_id] = next(
                (create for create in map(self._usable_event, self._create_ids)
                 if create is not None and create.room_id == room_id), None)
        return self._create_by_room[room_id]

    # -- step 3: the rest, by mainline --------------------------------------------------------

    def _mainline_order(self, event_ids: list[str], power_levels_id: str | None) -> list[str]:
        if not event_ids:
            return []
        mainline = self._mainline_depths(power_levels_id)
        memo: dict[str, int] = {}

        def sort_key(event_id: str) -> tuple[int, int, str]:
            depth = self._mainline_depth(event_id, mainline, memo)
            return (depth, self.graph.event(event_id).origin_server_ts, event_id)

        return sorted(event_ids, key=sort_key)

    def _mainline_depths(self, power_levels_id: str | None) -> dict[str, int]:
        """Mainline events -> depth, the oldest being 1, so that "earlier" sorts first."""
        mainline: list[str] = []
        seen: set[str] = set()
        current = power_levels_id
        while current is not None and current not in seen and self.graph.event(current) is not None:
            seen.add(current)
            mainline.append(current)
            current = self.graph.power_levels_parent(current)
        return {event_id: depth for depth, event_id in enumerate(reversed(mainline), start=1)}

    def _mainline_depth(self, event_id: str, mainline: Mapping[str, int],
                        memo: dict[str, int]) -> int:
        """Depth of the first mainline event on ``event_id``'s chain of power levels parents.

        0 when the chain never meets the mainline. Every event walked over shares the
        answer, so all of them are memoised.
        """
        walked: list[str] = []
        walked_set: set[str] = set()
        current = event_id
        depth = 0
        while True:
            if current in memo:
                depth = memo[current]
                break
            walked.append(current)
            walked_set.add(current)
            parent = self.graph.power_levels_parent(current)
            if parent is None or parent in walked_set:
                break
            if parent in mainline:
                depth = mainline[parent]
                break
            current = parent
        for walked_id in walked:
            memo[walked_id] = depth
        return depth


def _lexicographic_topological_sort(cites: dict[str, set[str]],
                                    sort_key: Callable[[str], tuple]) -> list[str]:
    """Kahn's algorithm, cited events first; among the ready ones the smallest key wins.

    ``sort_key`` must end with the node itself so that keys never tie. Events on an
    auth_events cycle (only a broken or malicious DAG has one) are left out.
    """
    # How many of each node's auth events are still to be emitted.
    waiting_on = {node: len(edges) for node, edges in cites.items()}
    cited_by: dict[str, list[str]] = defaultdict(list)
    for node, edges in cites.items():
        for edge in edges:
            cited_by[edge].append(node)
    ready = [sort_key(node) for node, count in waiting_on.items() if count == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        node = heapq.heappop(ready)[-1]
        order.append(node)
        for citer in cited_by[node]:
            waiting_on[citer] -= 1
            if waiting_on[citer] == 0:
                heapq.heappush(ready, sort_key(citer))
    return order
