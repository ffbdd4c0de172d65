"""Application-service registrations: the YAML files named in ``appservice.config_files``,
read and checked (pure: no I/O beyond reading the text it is given).

A registration says who the service is (``id``, ``sender_localpart``), how each side
authenticates (``as_token`` to us, ``hs_token`` to it), where to push (``url``, or null
for a service that only acts), and which users, room aliases and room IDs it is
interested in (``namespaces``; an exclusive namespace is the service's alone).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterable

import yaml

_NAMESPACE_KINDS = ("users", "aliases", "rooms")


class RegistrationError(ValueError):
    """A registration that cannot be used; the message names the file and the field."""


@dataclass(frozen=True)
class Namespace:
    regex: str
    exclusive: bool
    pattern: re.Pattern = field(compare=False, repr=False)

    def matches(self, value: str) -> bool:
        return self.pattern.fullmatch(value) is not None


@dataclass(frozen=True)
class Registration:
    id: str
    url: str | None
    as_token: str
    hs_token: str
    sender_localpart: str
    sender: str                      # the full user ID of sender_localpart on this server
    users: tuple[Namespace, ...] = ()
    aliases: tuple[Namespace, ...] = ()
    rooms: tuple[Namespace, ...] = ()
    rate_limited: bool = True
    receive_ephemeral: bool = False
    receive_to_device: bool = False  # MSC2409: to-device messages for its users
    protocols: tuple[str, ...] = ()
    source: str = ""                 # the file it came from, for messages

    # -- interest -----------------------------------------------------------------

    def is_user_in_namespace(self, user_id: str) -> bool:
        """Whether the service may act as (and is interested in) this user."""
        return user_id == self.sender or any(n.matches(user_id) for n in self.users)

    def is_alias_in_namespace(self, alias: str) -> bool:
        return any(n.matches(alias) for n in self.aliases)

    def is_room_in_namespace(self, room_id: str) -> bool:
        return any(n.matches(room_id) for n in self.rooms)

    def claims_user(self, user_id: str) -> bool:
        """An exclusive users namespace covers this user: nobody else may register it."""
        return user_id == self.sender or any(n.exclusive and n.matches(user_id) for n in self.users)

    def claims_alias(self, alias: str) -> bool:
        return any(n.exclusive and n.matches(alias) for n in self.aliases)

    def interested_in_event(self, sender: str, event_type: str, state_key: str | None, room_id: str,
                            room_aliases: Iterable[str] = (), room_members: Iterable[str] = ()) -> bool:
        """As the spec and Synapse decide: the sender or a member event's target is in the
        users namespace, or the room's ID or one of its aliases or members is."""
        if self.is_user_in_namespace(sender):
            return True
        if event_type == "m.room.member" and state_key is not None and self.is_user_in_namespace(state_key):
            return True
        if self.is_room_in_namespace(room_id):
            return True
        if any(self.is_alias_in_namespace(a) for a in room_aliases):
            return True
        return any(self.is_user_in_namespace(m) for m in room_members)


def _text(data: dict, key: str, source: str, *, allow_none: bool = False) -> str | None:
    value = data.get(key)
    if value is None and allow_none and key in data:
        return None
    if not isinstance(value, str) or not value:
        raise RegistrationError(f"{source}: '{key}' must be a non-empty string")
    return value


def _namespaces(data: dict, kind: str, source: str) -> tuple[Namespace, ...]:
    entries = data.get(kind, [])
    if entries is None:
        return ()
    if not isinstance(entries, list):
        raise RegistrationError(f"{source}: namespaces.{kind} must be a list")
    found = []
    for index, entry in enumerate(entries):
        where = f"{source}: namespaces.{kind}[{index}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("regex"), str) or not entry["regex"]:
            raise RegistrationError(f"{where} needs a 'regex' string")
        exclusive = entry.get("exclusive", False)
        if not isinstance(exclusive, bool):
            raise RegistrationError(f"{where}: 'exclusive' must be true or false")
        try:
            pattern = re.compile(entry["regex"])
        except re.error as error:
            raise RegistrationError(f"{where}: bad regex {entry['regex']!r}: {error}") from None
        found.append(Namespace(entry["regex"], exclusive, pattern))
    return tuple(found)


def parse_registration(data: Any, server_name: str, source: str = "registration") -> Registration:
    """A checked registration from a loaded YAML document, or RegistrationError."""
    if not isinstance(data, dict):
        raise RegistrationError(f"{source}: not a mapping")
    url = _text(data, "url", source, allow_none=True) if "url" in data else None
    if "url" not in data:
        raise RegistrationError(f"{source}: 'url' is required (null for a service that receives nothing)")
    if url is not None and not re.match(r"https?://", url):
        raise RegistrationError(f"{source}: 'url' must be an http(s) URL or null")
    localpart = _text(data, "sender_localpart", source)
    if not re.fullmatch(r"[a-z0-9._=/+-]+", localpart):
        raise RegistrationError(f"{source}: 'sender_localpart' is not a valid user localpart")
    namespaces = data.get("namespaces", {})
    if namespaces is None:
        namespaces = {}
    if not isinstance(namespaces, dict):
        raise RegistrationError(f"{source}: 'namespaces' must be a mapping")
    unknown = sorted(set(namespaces) - set(_NAMESPACE_KINDS))
    if unknown:
        raise RegistrationError(f"{source}: unknown namespaces {', '.join(unknown)}")
    for flag in ("rate_limited", "receive_ephemeral", "receive_to_device", "org.matrix.msc2409.push_to_device"):
        if flag in data and data[flag] is not None and not isinstance(data[flag], bool):
            raise RegistrationError(f"{source}: '{flag}' must be true or false")
    protocols = data.get("protocols") or []
    if not isinstance(protocols, list) or not all(isinstance(p, str) for p in protocols):
        raise RegistrationError(f"{source}: 'protocols' must be a list of strings")
    ephemeral = data.get("receive_ephemeral")
    if ephemeral is None:
        ephemeral = data.get("de.sorunome.msc2409.push_ephemeral", False) is True
    to_device = data.get("receive_to_device")
    if to_device is None:
        to_device = data.get("org.matrix.msc2409.push_to_device")
    return Registration(
        id=_text(data, "id", source), url=url, as_token=_text(data, "as_token", source),
        hs_token=_text(data, "hs_token", source), sender_localpart=localpart,
        sender=f"@{localpart}:{server_name}",
        users=_namespaces(namespaces, "users", source), aliases=_namespaces(namespaces, "aliases", source),
        rooms=_namespaces(namespaces, "rooms", source),
        rate_limited=data.get("rate_limited") is not False,
        receive_ephemeral=bool(ephemeral), receive_to_device=to_device is True,
        protocols=tuple(protocols), source=source)


def parse_registration_text(text: str, server_name: str, source: str) -> Registration:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise RegistrationError(f"{source}: not valid YAML: {error}") from None
    return parse_registration(data, server_name, source)


def check_unique(registrations: list[Registration]) -> None:
    """``id``, ``as_token`` and ``hs_token`` must each belong to one registration only,
    and no sender may be another's."""
    for attribute in ("id", "as_token", "hs_token", "sender"):
        seen: dict[str, str] = {}
        for registration in registrations:
            value = getattr(registration, attribute)
            if value in seen:
                raise RegistrationError(f"{registration.source}: '{attribute}' is also used by {seen[value]}")
            seen[value] = registration.source
