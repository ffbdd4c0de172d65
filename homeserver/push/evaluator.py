"""Push rule evaluation: which rule of a user's list matches an event, and what it says.

Pure: no I/O, no Twisted. Whatever needs the database (the room's member count, the
user's display name in the room, the sender's power level) comes in a ``PushContext``
the caller builds. Rules are compiled once (``PushRuleEvaluator(rules)``: globs become
linear-time matchers cached process-wide, dotted keys become tuples), then
``evaluate(event, context)`` runs them in order and answers the first match's actions.

    evaluator = PushRuleEvaluator(ruleset.in_evaluation_order())   # or .from_ruleset_json(...)
    result = evaluator.evaluate(event, PushContext(user_id, member_count=5, display_name="Alice",
                                                   sender_power_level=50, notification_levels={"room": 50}))
    result.notify, result.highlight, result.sound, result.rule_id

Semantics, from the specification's "Push Rules" section:

* Kinds are checked override, content, room, sender, underride; the caller's order is
  used as given (``rules.py`` produces it). Disabled rules never match.
* ``event_match``: case-insensitive glob (``*`` any run, ``?`` one character) on the
  whole string value at a dot-separated key (``\\.`` is a literal dot); for
  ``content.body`` any substring starting and ending at a word boundary (the value's
  ends or a character outside ``[A-Za-z0-9_]``). Absent or non-string: no match.
* ``event_property_is`` / ``event_property_contains``: exact, type-strict comparison of
  strings, integers, booleans and null (``1`` is not ``true``).
* ``contains_display_name``: the user's display name as a word in ``content.body``.
* ``room_member_count``: ``is`` = ``[==|<|>|<=|>=]N``.
* ``sender_notification_permission``: sender's power level >= ``notifications[key]`` of
  the room's power levels (default 50).
* Unknown condition kinds never match, so a rule carrying one never matches.
* Content rules match ``content.body`` against their ``pattern``; room rules match
  ``room_id == rule_id``, sender rules ``sender == rule_id``.
* The user's own events never notify them (the spec's MUST): ``evaluate`` answers no
  match for them.
* The legacy body-mention rules (``.m.rule.contains_display_name``, ``.m.rule.roomnotif``,
  ``.m.rule.contains_user_name``; off by default) skip events whose content has
  ``m.mentions``.
* Actions: ``notify``; ``set_tweak`` ``highlight`` (no value means true) and ``sound``
  and any other tweak; the historical ``dont_notify`` and ``coalesce`` are ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable, Iterable, Mapping, Sequence

KINDS = ("override", "content", "room", "sender", "underride")

LEGACY_MENTION_RULE_IDS = frozenset({".m.rule.contains_display_name", ".m.rule.roomnotif",
                                     ".m.rule.contains_user_name"})
HISTORICAL_ACTIONS = frozenset({"dont_notify", "coalesce"})

DEFAULT_NOTIFICATION_LEVEL = 50
_MAX_SAFE_INT = 2 ** 53 - 1

_MISSING = object()


# --- The context: what the evaluator needs beyond the event ---------------------------

@dataclass(frozen=True)
class PushContext:
    """Everything about the room and the user the conditions need.

    ``user_id``: whose rules these are. ``member_count``: joined members of the room
    (None: ``room_member_count`` never matches). ``display_name``: the user's display
    name in the room (None or empty: ``contains_display_name`` never matches).

    For ``sender_notification_permission`` give either ``notification_permission``, a
    callable ``key -> bool`` (called at most once per key and event, only when a rule
    gets that far), or ``sender_power_level`` with ``notification_levels`` (the
    ``notifications`` object of the room's ``m.room.power_levels`` content; a missing
    key means 50). With neither, the condition never matches.
    """
    user_id: str
    member_count: int | None = None
    display_name: str | None = None
    sender_power_level: int | float | None = None
    notification_levels: Mapping[str, Any] | None = None
    notification_permission: Callable[[str], bool] | None = None

    def sender_may_notify(self, key: str) -> bool:
        if self.notification_permission is not None:
            return bool(self.notification_permission(key))
        if self.sender_power_level is None:
            return False
        return self.sender_power_level >= required_notification_level(self.notification_levels, key)


def required_notification_level(notification_levels: Mapping[str, Any] | None, key: str) -> int:
    """The level ``notifications[key]`` asks for (50 when absent or not an integer)."""
    if isinstance(notification_levels, Mapping):
        level = notification_levels.get(key)
        if type(level) is int:
            return level
    return DEFAULT_NOTIFICATION_LEVEL


# --- The result ------------------------------------------------------------------------

@dataclass(frozen=True)
class PushResult:
    """What the matching rule says; ``rule_id`` None when no rule matched (no notification)."""
    rule_id: str | None = None
    kind: str | None = None
    actions: tuple = ()
    notify: bool = False
    highlight: bool = False
    sound: str | None = None
    tweaks: Mapping[str, Any] = field(default_factory=dict)

    @property
    def matched(self) -> bool:
        return self.rule_id is not None


NO_MATCH = PushResult()


def interpret_actions(actions: Iterable[Any]) -> tuple[tuple, bool, bool, Any, dict[str, Any]]:
    """(actions without historical ones, notify, highlight, sound, tweaks) of an action list."""
    kept: list[Any] = []
    notify = False
    tweaks: dict[str, Any] = {}
    for action in actions:
        if isinstance(action, str):
            if action in HISTORICAL_ACTIONS:
                continue
            kept.append(action)
            if action == "notify":
                notify = True
        elif isinstance(action, Mapping):
            kept.append(action)
            name = action.get("set_tweak")
            if isinstance(name, str):
                if name == "highlight":
                    value = action.get("value", True)
                    tweaks[name] = value if isinstance(value, bool) else False
                else:
                    tweaks[name] = action.get("value")
    highlight = tweaks.get("highlight", False) is True
    sound = tweaks.get("sound")
    return tuple(kept), notify, highlight, sound if isinstance(sound, str) else None, tweaks


# --- Globs -----------------------------------------------------------------------------
#
# Not regexes: Python's backtracking engine makes a user's glob like ``a*b*c`` cost
# O(n^3) on a long body. A glob is its '*'-separated segments ('?' matches one character
# inside a segment); a whole-value match anchors the first and last segments and places
# the middle ones leftmost, and a word-bounded search needs only the leftmost start
# (placing everything as early as possible leaves the most room for what follows). Each
# segment is found with str.find (or a fixed-length regex when it has '?'), so a match
# costs O(len(value) * len(glob)).

_WORD_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


def _starts_word(text: str, i: int) -> bool:
    """A match may start at i: the value's start, after a boundary character, or on one."""
    return i == 0 or text[i - 1] not in _WORD_CHARS or (i < len(text) and text[i] not in _WORD_CHARS)


def _ends_word(text: str, j: int) -> bool:
    return j == len(text) or text[j] not in _WORD_CHARS or (j > 0 and text[j - 1] not in _WORD_CHARS)


class _Segment:
    """A run of the glob without '*': literal characters and '?'."""

    __slots__ = ("text", "length", "_regex")

    def __init__(self, text: str, wildcards: bool):
        self.text = text
        self.length = len(text)
        self._regex = None
        if wildcards and "?" in text:
            self._regex = re.compile("".join("." if c == "?" else re.escape(c) for c in text), re.DOTALL)

    def at(self, value: str, position: int) -> bool:
        if self._regex is None:
            return value.startswith(self.text, position)
        return self._regex.match(value, position) is not None

    def find(self, value: str, start: int) -> int:
        if self._regex is None:
            return value.find(self.text, start)
        found = self._regex.search(value, start)
        return found.start() if found is not None else -1


class GlobMatcher:
    """A case-insensitive glob against a whole value, or (``words``) a word-bounded
    substring. ``literal``: no wildcards at all (a display name is text, not a glob)."""

    __slots__ = ("glob", "words", "_segments", "_min_length")

    def __init__(self, glob: str, words: bool, literal: bool = False):
        self.glob = glob
        self.words = words
        lowered = glob.lower()
        parts = [lowered] if literal else lowered.split("*")
        if len(parts) > 2:  # empty middle segments come from '**'
            parts = [parts[0]] + [p for p in parts[1:-1] if p] + [parts[-1]]
        self._segments = tuple(_Segment(p, not literal) for p in parts)
        self._min_length = sum(s.length for s in self._segments)

    def matches(self, value: str) -> bool:
        text = value.lower()
        if len(text) < self._min_length:
            return False
        return self._search_words(text) if self.words else self._match_whole(text)

    def _match_whole(self, text: str) -> bool:
        segments = self._segments
        first = segments[0]
        if len(segments) == 1:
            return len(text) == first.length and first.at(text, 0)
        if not first.at(text, 0):
            return False
        position = first.length
        for middle in segments[1:-1]:
            found = middle.find(text, position)
            if found < 0:
                return False
            position = found + middle.length
        last = segments[-1]
        start = len(text) - last.length
        return start >= position and last.at(text, start)

    def _search_words(self, text: str) -> bool:
        segments = self._segments
        first = segments[0]
        found = first.find(text, 0)
        if len(segments) == 1:
            while found >= 0:
                if _starts_word(text, found) and _ends_word(text, found + first.length):
                    return True
                found = first.find(text, found + 1)
            return False
        while found >= 0 and not _starts_word(text, found):
            found = first.find(text, found + 1)
        if found < 0:
            return False
        position = found + first.length
        for middle in segments[1:-1]:
            found = middle.find(text, position)
            if found < 0:
                return False
            position = found + middle.length
        last = segments[-1]
        if last.length == 0:
            return True  # '*' runs to the end of the value, a boundary
        found = last.find(text, position)
        while found >= 0:
            if _ends_word(text, found + last.length):
                return True
            found = last.find(text, found + 1)
        return False


@lru_cache(maxsize=8192)
def glob_matcher(glob: str, words: bool = False, literal: bool = False) -> GlobMatcher:
    """A compiled glob, shared by every rule (and user) with the same pattern."""
    return GlobMatcher(glob, words, literal)


def glob_matches(glob: str, value: str, words: bool = False) -> bool:
    """``glob`` against ``value``: the whole value, or (``words``) as ``content.body`` is matched."""
    return glob_matcher(glob, words).matches(value)


# --- Dotted keys -------------------------------------------------------------------------

@lru_cache(maxsize=4096)
def split_key(key: str) -> tuple[str, ...]:
    """``content.m\\.relates_to.rel_type`` -> ("content", "m.relates_to", "rel_type").

    ``\\.`` is a literal dot and ``\\\\`` a literal backslash; any other backslash is kept
    as it is (the appendix "Dot-separated property paths").
    """
    parts: list[str] = []
    current: list[str] = []
    i, n = 0, len(key)
    while i < n:
        char = key[i]
        if char == "\\" and i + 1 < n and key[i + 1] in ".\\":
            current.append(key[i + 1])
            i += 2
            continue
        if char == ".":
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
        i += 1
    parts.append("".join(current))
    return tuple(parts)


def lookup(event: Mapping[str, Any], path: Sequence[str]) -> Any:
    """The value at a split key, or ``_MISSING``."""
    value: Any = event
    for part in path:
        if not isinstance(value, Mapping):
            return _MISSING
        value = value.get(part, _MISSING)
        if value is _MISSING:
            return _MISSING
    return value


def _is_simple_value(value: Any) -> bool:
    if value is None or isinstance(value, (str, bool)):
        return True
    return type(value) is int and -_MAX_SAFE_INT <= value <= _MAX_SAFE_INT


def _same_value(a: Any, b: Any) -> bool:
    # Type-strict: True is not 1, "1" is not 1.
    return type(a) is type(b) and a == b


# --- Conditions --------------------------------------------------------------------------

class _Event:
    """The event as the conditions see it: its dict, plus lazily computed facts."""

    __slots__ = ("data", "_has_mentions")

    def __init__(self, data: Mapping[str, Any]):
        self.data = data
        self._has_mentions: bool | None = None

    @property
    def has_mentions(self) -> bool:
        if self._has_mentions is None:
            content = self.data.get("content")
            self._has_mentions = isinstance(content, Mapping) and "m.mentions" in content
        return self._has_mentions


class _PermissionCache:
    __slots__ = ("context", "answers")

    def __init__(self, context: PushContext):
        self.context = context
        self.answers: dict[str, bool] = {}

    def may_notify(self, key: str) -> bool:
        answer = self.answers.get(key)
        if answer is None:
            answer = self.answers[key] = self.context.sender_may_notify(key)
        return answer


Condition = Callable[[_Event, PushContext, _PermissionCache], bool]


def _never(event, context, permissions) -> bool:
    return False


def _event_match(key: str, pattern: str) -> Condition:
    path = split_key(key)
    matcher = glob_matcher(pattern, key == "content.body")

    def condition(event, context, permissions) -> bool:
        value = lookup(event.data, path)
        return isinstance(value, str) and matcher.matches(value)
    return condition


def _event_property_is(key: str, expected: Any) -> Condition:
    path = split_key(key)

    def condition(event, context, permissions) -> bool:
        value = lookup(event.data, path)
        return value is not _MISSING and _is_simple_value(value) and _same_value(value, expected)
    return condition


def _event_property_contains(key: str, expected: Any) -> Condition:
    path = split_key(key)

    def condition(event, context, permissions) -> bool:
        values = lookup(event.data, path)
        if not isinstance(values, list):
            return False
        return any(_is_simple_value(v) and _same_value(v, expected) for v in values)
    return condition


_BODY = ("content", "body")


def _contains_display_name(event, context, permissions) -> bool:
    name = context.display_name
    if not name:
        return False
    body = lookup(event.data, _BODY)
    if not isinstance(body, str):
        return False
    # The name is literal text: its own '*' and '?' are not wildcards.
    return glob_matcher(name, True, True).matches(body)


_MEMBER_COUNT = re.compile(r"\A(==|<=|>=|<|>)?([0-9]+)\Z")
_COMPARISONS: dict[str, Callable[[int, int], bool]] = {
    "==": lambda a, b: a == b, "<": lambda a, b: a < b, ">": lambda a, b: a > b,
    "<=": lambda a, b: a <= b, ">=": lambda a, b: a >= b,
}


def parse_member_count(spec: Any) -> tuple[str, int] | None:
    """``"<=10"`` -> ("<=", 10); None when it is not a valid ``is`` parameter."""
    if not isinstance(spec, str):
        return None
    found = _MEMBER_COUNT.match(spec.strip())
    if found is None:
        return None
    return found.group(1) or "==", int(found.group(2))


def _room_member_count(spec: Any) -> Condition:
    parsed = parse_member_count(spec)
    if parsed is None:
        return _never
    compare, number = _COMPARISONS[parsed[0]], parsed[1]

    def condition(event, context, permissions) -> bool:
        count = context.member_count
        return count is not None and compare(count, number)
    return condition


def _sender_notification_permission(key: str) -> Condition:
    def condition(event, context, permissions) -> bool:
        return permissions.may_notify(key)
    return condition


def compile_condition(condition: Any) -> Condition:
    """One condition as a callable; malformed or unknown ones never match."""
    if not isinstance(condition, Mapping):
        return _never
    kind = condition.get("kind")
    key = condition.get("key")
    if kind == "event_match":
        pattern = condition.get("pattern")
        if isinstance(key, str) and isinstance(pattern, str):
            return _event_match(key, pattern)
    elif kind in ("event_property_is", "event_property_contains"):
        if isinstance(key, str) and "value" in condition and _is_simple_value(condition["value"]):
            make = _event_property_is if kind == "event_property_is" else _event_property_contains
            return make(key, condition["value"])
    elif kind == "contains_display_name":
        return _contains_display_name
    elif kind == "room_member_count":
        return _room_member_count(condition.get("is"))
    elif kind == "sender_notification_permission":
        if isinstance(key, str):
            return _sender_notification_permission(key)
    return _never


# --- Rules ---------------------------------------------------------------------------------

class CompiledRule:
    __slots__ = ("kind", "rule_id", "conditions", "result", "skip_if_mentions")

    def __init__(self, kind: str, rule_id: str, conditions: list[Condition], actions: Iterable[Any]):
        self.kind = kind
        self.rule_id = rule_id
        self.conditions = conditions
        kept, notify, highlight, sound, tweaks = interpret_actions(actions)
        self.result = PushResult(rule_id, kind, kept, notify, highlight, sound, tweaks)
        self.skip_if_mentions = rule_id in LEGACY_MENTION_RULE_IDS

    def matches(self, event: _Event, context: PushContext, permissions: _PermissionCache) -> bool:
        if self.skip_if_mentions and event.has_mentions:
            return False
        for condition in self.conditions:
            if not condition(event, context, permissions):
                return False
        return True


def _room_is(room_id: str) -> Condition:
    def condition(event, context, permissions) -> bool:
        return event.data.get("room_id") == room_id
    return condition


def _sender_is(sender: str) -> Condition:
    def condition(event, context, permissions) -> bool:
        return event.data.get("sender") == sender
    return condition


def compile_rule(kind: str, rule_id: str, actions: Iterable[Any], conditions: Iterable[Any] | None = None,
                 pattern: str | None = None) -> CompiledRule:
    """A rule as the evaluator runs it (the kind decides what its conditions are)."""
    if kind in ("override", "underride"):
        compiled = [compile_condition(c) for c in (conditions or ())]
    elif kind == "content":
        compiled = [_event_match("content.body", pattern) if isinstance(pattern, str) else _never]
    elif kind == "room":
        compiled = [_room_is(rule_id)]
    elif kind == "sender":
        compiled = [_sender_is(rule_id)]
    else:
        compiled = [_never]
    # A rule with a condition that can never hold is kept (its place in the list is part
    # of the user's settings) but costs nothing: its first condition fails.
    if _never in compiled:
        compiled = [_never]
    return CompiledRule(kind, rule_id, compiled, actions)


def _event_dict(event: Any) -> Mapping[str, Any]:
    """The event's JSON: an ``Event`` (its PDU) or a plain dict (client or PDU format)."""
    pdu = getattr(event, "pdu", None)
    if pdu is None:
        return event
    room_id = getattr(event, "room_id", None)
    if room_id is not None and pdu.get("room_id") != room_id:
        # A v12 create event carries no room_id; the Event derives it.
        return {**pdu, "room_id": room_id}
    return pdu


class PushRuleEvaluator:
    """One user's rules, compiled; ``evaluate`` is then cheap and safe to call often."""

    __slots__ = ("rules",)

    def __init__(self, rules: Iterable[Any]):
        """``rules``: objects with ``kind``, ``rule_id``, ``enabled``, ``actions``,
        ``conditions`` and ``pattern`` (``rules.PushRule``), in evaluation order.
        Disabled rules are dropped here."""
        self.rules: tuple[CompiledRule, ...] = tuple(
            compile_rule(rule.kind, rule.rule_id, rule.actions, rule.conditions, rule.pattern)
            for rule in rules if rule.enabled)

    @classmethod
    def from_ruleset_json(cls, ruleset: Mapping[str, Any]) -> "PushRuleEvaluator":
        """From the ``global`` object of ``GET /pushrules/`` (kinds checked in spec order)."""
        if "global" in ruleset and isinstance(ruleset["global"], Mapping):
            ruleset = ruleset["global"]
        evaluator = cls(())
        compiled = []
        for kind in KINDS:
            for rule in ruleset.get(kind) or ():
                if not isinstance(rule, Mapping) or not rule.get("enabled", True):
                    continue
                compiled.append(compile_rule(kind, rule.get("rule_id", ""), rule.get("actions") or (),
                                             rule.get("conditions"), rule.get("pattern")))
        evaluator.rules = tuple(compiled)
        return evaluator

    def matching_rule(self, event: Any, context: PushContext) -> CompiledRule | None:
        data = _event_dict(event)
        if data.get("sender") == context.user_id:
            return None
        view = _Event(data)
        permissions = _PermissionCache(context)
        for rule in self.rules:
            if rule.matches(view, context, permissions):
                return rule
        return None

    def evaluate(self, event: Any, context: PushContext) -> PushResult:
        """The first matching rule's actions, or ``NO_MATCH`` (also for the user's own events)."""
        rule = self.matching_rule(event, context)
        return rule.result if rule is not None else NO_MATCH


def evaluate(rules: Iterable[Any], event: Any, context: PushContext) -> PushResult:
    """One-off evaluation (compiles the rules every call; keep a ``PushRuleEvaluator`` instead)."""
    return PushRuleEvaluator(rules).evaluate(event, context)
