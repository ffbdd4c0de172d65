"""Friends and blocks (DESIGN.md §2 rows "friend request" and "block").

Where they live:
- Each local user's relationships are their global account data
  ``io.drocsid.relationships``: ``{target_user_id: type}`` with type ``friend``,
  ``pending_incoming``, ``pending_outgoing`` or ``blocked``. Writing it through the
  account-data handler advances the ``account_data`` stream and wakes that user's
  listeners (``/sync``, the gateway), which turn the change into RELATIONSHIP_UPDATE.
- A block is ``m.ignored_user_list`` (what Matrix clients already honour); the
  ``blocked`` entries of ``io.drocsid.relationships`` mirror it so that the gateway sees
  blocks on the same stream. The ignore list is the truth when they disagree (a Matrix
  client may edit it directly).

A request between two local users writes both users' data; to a user of another
instance the request, acceptance or removal travels as the ``io.drocsid.friend_request``
EDU (``federation.friend_requests``) when federation runs.
"""

from __future__ import annotations

from weakref import WeakKeyDictionary

from homeserver.events.received import is_valid_user_id
from homeserver.http.errors import MatrixError, forbidden, invalid_param, not_found
from homeserver.locks import KeyedLock

RELATIONSHIPS = "io.drocsid.relationships"
IGNORED = "m.ignored_user_list"
FRIEND, INCOMING, OUTGOING, BLOCKED = "friend", "pending_incoming", "pending_outgoing", "blocked"
TYPES = (FRIEND, INCOMING, OUTGOING, BLOCKED)
_PENDING_OR_FRIEND = (FRIEND, INCOMING, OUTGOING)

# One lock per homeserver: a change reads and writes two users' data, and changes are rare.
_locks: "WeakKeyDictionary[object, KeyedLock]" = WeakKeyDictionary()


def lock(hs) -> KeyedLock:
    found = _locks.get(hs)
    if found is None:
        found = _locks[hs] = KeyedLock()
    return found


def is_local(hs, user_id: str) -> bool:
    return user_id.endswith(":" + hs.config.server_name)


def localpart(user_id: str) -> str:
    return user_id[1:].split(":", 1)[0]


async def check_user(hs, actor: str, target: str, *, self_message: str) -> None:
    """400 for a malformed ID or the actor themself, 404 for a user we do not know."""
    if not is_valid_user_id(target):
        raise invalid_param("Not a user ID")
    if target == actor:
        raise invalid_param(self_message)
    if is_local(hs, target):
        record = await hs.users.get_user(target)
        if record is None or record.deactivated:
            raise not_found("Unknown user")
    elif getattr(hs, "federation_sender", None) is None:
        raise not_found("Users of other servers need federation, which is not enabled")


async def ignored_users(hs, user_id: str) -> frozenset[str]:
    return await hs.sync.ignored_users(user_id)


async def blocked_between(hs, a: str, b: str) -> bool:
    """Whether either user blocks the other (a remote user's own list is not ours to read)."""
    if b in await ignored_users(hs, a):
        return True
    return is_local(hs, b) and a in await ignored_users(hs, b)


async def require_not_blocked(hs, actor: str, target: str, what: str) -> None:
    # One message for both directions: the actor does not learn that they are blocked.
    if await blocked_between(hs, actor, target):
        raise forbidden(f"You cannot {what} this user")


async def user_summary(hs, user_id: str) -> dict:
    name = None
    if is_local(hs, user_id):
        try:
            name = (await hs.profiles_handler.get_local_profile(user_id)).get("displayname")
        except MatrixError:
            name = None
    return {"id": user_id, "display_name": name if isinstance(name, str) else localpart(user_id)}


# -- the account data ---------------------------------------------------------------

async def types_of(hs, user_id: str) -> dict[str, str]:
    content = await hs.account_data.get(user_id, "", RELATIONSHIPS) or {}
    return {k: v for k, v in content.items() if isinstance(k, str) and v in TYPES}


async def _set(hs, user_id: str, target: str, kind: str | None) -> None:
    """Set (or with None remove) one entry of a local user's relationships."""
    if not is_local(hs, user_id):
        return
    types = await types_of(hs, user_id)
    if types.get(target) == kind:
        return
    if kind is None:
        types.pop(target, None)
    else:
        types[target] = kind
    await hs.account_data_handler.put(user_id, "", RELATIONSHIPS, types)


async def _set_ignored(hs, user_id: str, target: str, ignored: bool) -> bool:
    content = dict(await hs.account_data.get(user_id, "", IGNORED) or {})
    users = content.get("ignored_users")
    users = dict(users) if isinstance(users, dict) else {}
    if (target in users) == ignored:
        return False
    if ignored:
        users[target] = {}
    else:
        users.pop(target, None)
    content["ignored_users"] = users
    await hs.account_data_handler.put(user_id, "", IGNORED, content)
    return True


def _tell_remote(hs, sender: str, target: str, action: str) -> None:
    edus = getattr(hs, "friend_request_edus", None)
    if edus is not None and not is_local(hs, target):
        edus.send(sender, target, action)


# -- the use cases ------------------------------------------------------------------

async def list_relationships(hs, user_id: str) -> list[dict]:
    """The user's friends, pending requests both ways and blocks, by target."""
    types = await types_of(hs, user_id)
    ignored = await ignored_users(hs, user_id)
    found: dict[str, str] = {}
    for target, kind in types.items():
        if kind == BLOCKED and target not in ignored:
            continue  # unblocked by a Matrix client: the mirror is stale
        found[target] = BLOCKED if target in ignored else kind
    for target in ignored:
        found.setdefault(target, BLOCKED)
    return [{"user_id": target, "type": kind, "user": await user_summary(hs, target)}
            for target, kind in sorted(found.items())]


async def relationship(hs, user_id: str, target: str) -> str | None:
    if target in await ignored_users(hs, user_id):
        return BLOCKED
    kind = (await types_of(hs, user_id)).get(target)
    return kind if kind != BLOCKED else None


async def send_request(hs, user_id: str, target: str) -> str:
    """Ask ``target`` to be friends, or accept if they asked first; the new type."""
    await check_user(hs, user_id, target, self_message="You cannot befriend yourself")
    async with lock(hs).hold("relationships"):
        await require_not_blocked(hs, user_id, target, "send a friend request to")
        current = (await types_of(hs, user_id)).get(target)
        if current in (FRIEND, OUTGOING):
            return current
        if current == INCOMING:
            return await _accept(hs, user_id, target)
        return await _set_both(hs, user_id, target, OUTGOING, INCOMING, "request")


async def _accept(hs, user_id: str, target: str) -> str:
    return await _set_both(hs, user_id, target, FRIEND, FRIEND, "accept")


async def _set_both(hs, user_id: str, target: str, mine: str, theirs: str, action: str) -> str:
    """The user's side; the target's too when they are ours, else told to their server."""
    await _set(hs, user_id, target, mine)
    if is_local(hs, target):
        await _set(hs, target, user_id, theirs)
    else:
        _tell_remote(hs, user_id, target, action)
    return mine


async def accept(hs, user_id: str, target: str) -> str:
    await check_user(hs, user_id, target, self_message="You cannot befriend yourself")
    async with lock(hs).hold("relationships"):
        if (await types_of(hs, user_id)).get(target) != INCOMING:
            raise not_found("No pending friend request from this user")
        await require_not_blocked(hs, user_id, target, "befriend")
        return await _accept(hs, user_id, target)


async def decline(hs, user_id: str, target: str) -> None:
    await check_user(hs, user_id, target, self_message="You cannot befriend yourself")
    async with lock(hs).hold("relationships"):
        if (await types_of(hs, user_id)).get(target) != INCOMING:
            raise not_found("No pending friend request from this user")
        await _drop_both(hs, user_id, target, "decline")


async def remove(hs, user_id: str, target: str) -> None:
    """Unfriend, cancel one's request or decline theirs."""
    await check_user(hs, user_id, target, self_message="You cannot befriend yourself")
    async with lock(hs).hold("relationships"):
        if (await types_of(hs, user_id)).get(target) not in _PENDING_OR_FRIEND:
            raise not_found("No friend or friend request with this user")
        await _drop_both(hs, user_id, target, "remove")


async def _drop_both(hs, user_id: str, target: str, action: str) -> None:
    await _set(hs, user_id, target, None)
    if is_local(hs, target):
        if (await types_of(hs, target)).get(user_id) in _PENDING_OR_FRIEND:
            await _set(hs, target, user_id, None)
    else:
        _tell_remote(hs, user_id, target, action)


async def block(hs, user_id: str, target: str) -> None:
    """Block: ignore the user, and end any friendship or request between the two."""
    await check_user(hs, user_id, target, self_message="You cannot block yourself")
    async with lock(hs).hold("relationships"):
        await _set_ignored(hs, user_id, target, True)
        had = (await types_of(hs, user_id)).get(target)
        await _set(hs, user_id, target, BLOCKED)
        if had in _PENDING_OR_FRIEND:
            if is_local(hs, target):
                if (await types_of(hs, target)).get(user_id) in _PENDING_OR_FRIEND:
                    await _set(hs, target, user_id, None)
            else:
                _tell_remote(hs, user_id, target, "remove")


async def unblock(hs, user_id: str, target: str) -> None:
    await check_user(hs, user_id, target, self_message="You cannot block yourself")
    async with lock(hs).hold("relationships"):
        changed = await _set_ignored(hs, user_id, target, False)
        mirrored = (await types_of(hs, user_id)).get(target) == BLOCKED
        if not changed and not mirrored:
            raise not_found("This user is not blocked")
        if mirrored:
            await _set(hs, user_id, target, None)


async def on_remote(hs, sender: str, target: str, action: str) -> None:
    """A friend request change from a user of another instance (the EDU), for a local
    ``target``: applied unless the target blocks the sender."""
    if sender in await ignored_users(hs, target):
        return
    async with lock(hs).hold("relationships"):
        current = (await types_of(hs, target)).get(sender)
        if action == "request":
            if current == OUTGOING:
                await _set(hs, target, sender, FRIEND)  # both asked: friends on both sides
            elif current is None:
                await _set(hs, target, sender, INCOMING)
        elif action == "accept":
            if current == OUTGOING:
                await _set(hs, target, sender, FRIEND)
        elif action in ("decline", "remove"):
            if current in _PENDING_OR_FRIEND:
                await _set(hs, target, sender, None)
