"""Friend requests between Drocsid instances: the EDU ``io.drocsid.friend_request``
(DESIGN.md §2 row "friend request").

Content: ``{"sender": "@a:origin", "target": "@b:us", "action": action}`` with action
``request``, ``accept``, ``decline`` or ``remove`` (a block ends a friendship with
``remove``; the block itself is never told). Each side keeps its own user's view in
account data (``homeserver.drocsid.relationships``); the EDU keeps the two views in
step. An EDU speaks only for users of the server that sent it, to a local user who
exists, and a target who blocks the sender drops it. Servers that do not know the type
ignore it, as Matrix asks of unknown EDUs.
"""

from __future__ import annotations

from homeserver.drocsid import relationships
from homeserver.events.received import is_valid_user_id, server_name_of

FRIEND_REQUEST = "io.drocsid.friend_request"
ACTIONS = frozenset({"request", "accept", "decline", "remove"})


def attach(hs) -> None:
    """On a homeserver with federation: handle inbound EDUs, offer ``send`` to the handler."""
    edus = FriendRequestEdus(hs)
    hs.friend_request_edus = edus
    hs.federation_transactions.register_edu_handler(FRIEND_REQUEST, edus.on_edu)


class FriendRequestEdus:
    def __init__(self, hs):
        self._hs = hs

    def send(self, sender: str, target: str, action: str) -> None:
        self._hs.federation_sender.send_edu(server_name_of(target), FRIEND_REQUEST,
                                            {"sender": sender, "target": target, "action": action})

    async def on_edu(self, origin: str, content: dict) -> None:
        sender, target, action = content.get("sender"), content.get("target"), content.get("action")
        if not (is_valid_user_id(sender) and is_valid_user_id(target) and action in ACTIONS):
            return
        if server_name_of(sender) != origin or not relationships.is_local(self._hs, target):
            return
        record = await self._hs.users.get_user(target)
        if record is None or record.deactivated:
            return
        await relationships.on_remote(self._hs, sender, target, action)
