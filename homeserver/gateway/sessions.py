"""Gateway sessions: who is connected (or may still resume), and the sequence of each.

A session outlives its socket: while detached, its dispatches keep being numbered and
stored (``storage.stores.gateway_sessions``) so that a RESUME within the resume window
replays them. Numbering is deterministic: from the session's checkpoint (``base_seq``
after payload ``base_payload_id``), every later stored payload whose audience holds the
session's user is the next number; so the stored payloads and checkpoint are all a
replay (or a restarted server) needs. A heartbeat's acknowledged sequence moves the
checkpoint; payloads before every checkpoint are pruned. Dispatches reach the socket only once it is live (READY or the replay
sent); until then they wait in ``outbox``, and anything already replayed is skipped by
sequence number, so each is sent once and in order.
"""

from __future__ import annotations

import secrets
from collections import deque


def new_session_id() -> str:
    return secrets.token_hex(16)


class Session:
    def __init__(self, session_id: str, user_id: str, device_id: str | None, *, seq: int = 1,
                 base_payload_id: int = 0, last_seen_ts: int = 0):
        self.session_id = session_id
        self.user_id = user_id
        self.device_id = device_id
        self.seq = seq              # the last sequence number given out (1 is READY)
        # The checkpoint: sequence ``base_seq`` once payloads up to ``base_payload_id``
        # were numbered; a RESUME may ask for anything from there on.
        self.base_seq = seq
        self.base_payload_id = base_payload_id
        self.checkpoint_saved = True
        self.numbered: deque[tuple[int, int]] = deque()  # (seq, payload id) after the checkpoint
        self.last_seen_ts = last_seen_ts
        self.connection = None      # the GatewayProtocol, while attached
        self.live = False
        self.sent_seq = 0           # the last sequence sent over the current connection
        self.outbox: list[tuple[int | None, bytes]] = []

    def number(self, payload_id: int) -> int:
        """The next sequence number, for a stored payload."""
        self.seq += 1
        self.numbered.append((self.seq, payload_id))
        return self.seq

    def acknowledge(self, seq: int) -> bool:
        """The client has everything up to ``seq``: the checkpoint moves there."""
        moved = False
        while self.numbered and self.numbered[0][0] <= seq:
            self.base_seq, self.base_payload_id = self.numbered.popleft()
            moved = True
        if moved:
            self.checkpoint_saved = False
        return moved

    def can_resume_from(self, seq: int) -> bool:
        return self.base_seq <= seq <= self.seq

    def attach(self, connection, replayed_upto: int) -> None:
        """A socket takes the session over; dispatches queue until ``go_live``."""
        self.connection = connection
        self.live = False
        self.sent_seq = replayed_upto
        self.outbox = []

    def detach(self) -> None:
        self.connection = None
        self.live = False
        self.outbox = []

    def deliver(self, seq: int | None, text: bytes) -> None:
        if self.connection is None:
            return  # stored; a RESUME will replay it
        if not self.live:
            self.outbox.append((seq, text))
            return
        if seq is not None:
            if seq <= self.sent_seq:
                return  # already sent by the replay
            self.sent_seq = seq
        self.connection.send_text(text)

    def go_live(self) -> None:
        self.live = True
        waiting, self.outbox = self.outbox, []
        # Numbered while READY was being built: READY (1) goes first, the rest in order.
        waiting.sort(key=lambda item: item[0] or 0)
        for seq, text in waiting:
            self.deliver(seq, text)


class SessionRegistry:
    def __init__(self):
        self.sessions: dict[str, Session] = {}
        self._by_user: dict[str, dict[str, Session]] = {}

    def add(self, session: Session) -> None:
        self.sessions[session.session_id] = session
        self._by_user.setdefault(session.user_id, {})[session.session_id] = session

    def remove(self, session: Session) -> None:
        self.sessions.pop(session.session_id, None)
        mine = self._by_user.get(session.user_id)
        if mine is not None:
            mine.pop(session.session_id, None)
            if not mine:
                del self._by_user[session.user_id]

    def get(self, session_id: str) -> Session | None:
        return self.sessions.get(session_id)

    def of_user(self, user_id: str) -> list[Session]:
        return list(self._by_user.get(user_id, {}).values())

    def users(self) -> set[str]:
        return set(self._by_user)

    def has_user(self, user_id: str) -> bool:
        return user_id in self._by_user

    def __bool__(self) -> bool:
        return bool(self.sessions)
