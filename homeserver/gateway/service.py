"""The gateway: IDENTIFY, RESUME, presence and the lifetime of sessions.

Built once per homeserver (``Homeserver.gateway``); ``start`` loads the sessions that
may still be resumed (a restart keeps them), ``stop`` tells every socket to RECONNECT
and closes it. Sessions that stay detached longer than ``gateway.resume_window_secs``
are dropped with their stored dispatches.
"""

from __future__ import annotations

import json

from twisted.internet import defer, task
from twisted.logger import Logger

from homeserver.drocsid import permissions as perms
from homeserver.gateway.contexts import RoomContexts
from homeserver.gateway.dispatch import Dispatcher
from homeserver.drocsid.dms import list_dms
from homeserver.drocsid.presence import STATUSES, to_matrix_presence
from homeserver.drocsid.read_states import read_states_of
from homeserver.drocsid.relationships import list_relationships
from homeserver.gateway.payloads import Translator, server_json
from homeserver.gateway.protocol import (CLOSE_AUTHENTICATION_FAILED, CLOSE_INVALID_PAYLOAD,
                                         CLOSE_TOO_MANY_SESSIONS, CLOSE_UNKNOWN_ERROR, INVALID_SESSION, RECONNECT,
                                         FrameError, build_factory, dispatch_text, encode)
from homeserver.gateway.sessions import Session, SessionRegistry, new_session_id
from homeserver.handlers.auth import hash_token
from storage.stores.gateway_sessions import GatewaySessionStore

log = Logger(namespace="drocsid.gateway")

MAX_CUSTOM_STATUS = 128


class Gateway:
    def __init__(self, hs):
        from autobahn.twisted.resource import WebSocketResource

        self.hs = hs
        self.clock = hs.clock
        config = hs.config.gateway
        self.heartbeat_interval_ms = config.heartbeat_interval_ms
        self.resume_window_ms = config.resume_window_secs * 1000
        self.max_sessions_per_user = config.max_sessions_per_user
        self.store = GatewaySessionStore(hs.db)
        self.registry = SessionRegistry()
        self.contexts = RoomContexts(hs)
        self.translator = Translator(hs, self.contexts)
        self.dispatcher = Dispatcher(hs, self.registry, self.store, self.translator)
        self.connections: set = set()
        self.resource = WebSocketResource(build_factory(self))
        self._sweeper: task.LoopingCall | None = None
        self._tasks: set[defer.Deferred] = set()
        self.stopping = False
        self.started = False
        hs.notifier.add_event_listener(self.dispatcher.on_event)
        hs.typing.add_listener(self.dispatcher.on_typing)
        hs.presence.add_listener(self.dispatcher.on_presence)
        hs.receipts_handler.add_listener(self.dispatcher.on_receipt)
        hs.account_data_handler.add_listener(self.dispatcher.on_account_data)
        self.dispatcher.on_lost = self._lost

    # -- lifetime ---------------------------------------------------------------------

    async def start(self) -> None:
        await self.dispatcher.start()
        self.started = True
        now = self.clock.time_ms()
        stored_sessions, payloads = await self.store.load_live(now - self.resume_window_ms)
        for stored in stored_sessions:
            self.registry.add(Session(stored.session_id, stored.user_id, stored.device_id, seq=stored.base_seq,
                                      base_payload_id=stored.base_payload_id, last_seen_ts=stored.last_seen_ts))
        # Number what was dispatched after each checkpoint again, as it was numbered then.
        for payload in payloads:
            for user_id in payload.audience:
                for session in self.registry.of_user(user_id):
                    if payload.payload_id > session.base_payload_id:
                        session.number(payload.payload_id)
        self._sweeper = task.LoopingCall(self._background, "sweep", self._sweep)
        self._sweeper.clock = self.hs.reactor
        self._sweeper.start(max(1.0, min(60.0, self.resume_window_ms / 4000)), now=False)

    async def stop(self) -> None:
        """Before the database closes: everything numbered is stored, every socket is told
        to reconnect (and resume, after the restart). A gateway that never started (the
        database was out of reach) has nothing to save."""
        self.stopping = True
        if not self.started:
            return
        if self._sweeper is not None and self._sweeper.running:
            self._sweeper.stop()
        await self.dispatcher.flushed()
        self.dispatcher.stopped = True
        for connection in list(self.connections):
            connection.send_text(encode(RECONNECT))
            connection.close(CLOSE_UNKNOWN_ERROR, "server restarting; resume")
        if self._tasks:
            await defer.DeferredList(list(self._tasks))
        # What was queued while the first flush was waited for: nothing more can come now.
        await self.dispatcher.flushed()
        # The resume window counts from now: the sessions were attached until the stop.
        await self._save(list(self.registry.sessions.values()), self.clock.time_ms())

    def track(self, deferred: defer.Deferred) -> defer.Deferred:
        """Work a shutdown waits for before the database closes (the result passes through)."""
        self._tasks.add(deferred)

        def done(result):
            self._tasks.discard(deferred)
            return result
        deferred.addBoth(done)
        return deferred

    def _background(self, name: str, work) -> None:
        if self.stopping:
            return

        def failed(failure):
            log.failure("gateway {name} failed", failure, name=name)
        self.track(defer.ensureDeferred(work())).addErrback(failed)

    async def _sweep(self) -> None:
        now = self.clock.time_ms()
        expired, attached = [], []
        for session in list(self.registry.sessions.values()):
            if session.connection is not None:
                session.last_seen_ts = now
                attached.append(session)
            elif session.last_seen_ts <= now - self.resume_window_ms:
                self.registry.remove(session)
                expired.append(session.session_id)
        await self._save(attached, now)
        await self.store.delete(expired)
        await self.dispatcher.prune(lambda: min((s.base_payload_id for s in self.registry.sessions.values()),
                                                default=self.dispatcher.last_payload_id))

    async def _save(self, seen: list[Session], now: int) -> None:
        """Moved checkpoints, and when ``seen`` sessions were last attached."""
        moved = [s for s in self.registry.sessions.values() if not s.checkpoint_saved]
        for session in moved:
            session.checkpoint_saved = True
        await self.store.save_checkpoints([(s.session_id, s.base_seq, s.base_payload_id) for s in moved],
                                          [s.session_id for s in seen], now)

    # -- the client ops ---------------------------------------------------------------

    async def _authenticate(self, token) -> tuple[str, str] | None:
        if not isinstance(token, str) or not token:
            return None
        owner = await self.hs.tokens.get_token_owner(hash_token(token))
        if owner is None or owner.deactivated:
            return None
        if owner.expires_ts is not None and owner.expires_ts <= self.clock.time_ms():
            return None
        return owner.user_id, owner.device_id

    def _refuse(self, connection) -> None:
        connection.send_text(encode(INVALID_SESSION, False))
        connection.close(CLOSE_AUTHENTICATION_FAILED, "authentication failed")

    async def _owner_or_refuse(self, connection, token):
        """(user ID, device ID) of the token; None when the socket closed meanwhile or the
        token is refused (then INVALID_SESSION and the close are sent)."""
        owner = await self._authenticate(token)
        if connection.closing:
            return None
        if owner is None:
            self._refuse(connection)
        return owner

    async def identify(self, connection, d) -> None:
        if not isinstance(d, dict):
            raise FrameError(CLOSE_INVALID_PAYLOAD, "IDENTIFY needs an object")
        owner = await self._owner_or_refuse(connection, d.get("token"))
        if owner is None:
            return
        user_id, device_id = owner
        if not self._make_room_for(user_id):
            connection.close(CLOSE_TOO_MANY_SESSIONS, "too many sessions")
            return
        now = self.clock.time_ms()
        # Sequence 1 is READY; the session is numbered from the next payload on.
        session = Session(new_session_id(), user_id, device_id, seq=1,
                          base_payload_id=self.dispatcher.last_payload_id, last_seen_ts=now)
        session.attach(connection, 0)
        connection.session = session
        self.registry.add(session)
        try:
            await self.store.create(session.session_id, user_id, device_id, now, session.base_seq,
                                    session.base_payload_id)
        except Exception:
            self.registry.remove(session)
            raise
        ready = await self._ready(session)
        if session.connection is not connection:
            return
        # READY is never replayed (a RESUME starts at 1 or later), so it is not stored.
        connection.send_text(dispatch_text("READY", json.dumps(ready, ensure_ascii=False, separators=(",", ":")), 1))
        session.sent_seq = 1
        session.go_live()
        await self._set_status(user_id, "online", None)

    def _make_room_for(self, user_id: str) -> bool:
        """Below max_sessions_per_user: the oldest detached sessions give way."""
        sessions = sorted(self.registry.of_user(user_id), key=lambda s: s.last_seen_ts)
        excess = len(sessions) - self.max_sessions_per_user + 1
        detached = [s for s in sessions if s.connection is None][:max(0, excess)]
        for session in detached:
            self.registry.remove(session)
        if detached:
            self._background("evict", lambda: self.store.delete([s.session_id for s in detached]))
        return len(sessions) - len(detached) < self.max_sessions_per_user

    async def resume(self, connection, d) -> None:
        if not isinstance(d, dict) or not isinstance(d.get("session_id"), str) \
                or not isinstance(d.get("seq"), int) or isinstance(d.get("seq"), bool):
            raise FrameError(CLOSE_INVALID_PAYLOAD, "RESUME needs token, session_id and seq")
        owner = await self._owner_or_refuse(connection, d.get("token"))
        if owner is None:
            return
        seq = d["seq"]
        session = self.registry.get(d["session_id"])
        if session is None or session.user_id != owner[0] or not session.can_resume_from(seq):
            # Unknown, expired, someone else's, or a sequence we no longer (or never) had:
            # the client identifies afresh on this socket.
            connection.send_text(encode(INVALID_SESSION, False))
            return
        previous = session.connection
        if previous is not None:
            previous.session = None
            session.detach()
            previous.close(CLOSE_UNKNOWN_ERROR, "session resumed elsewhere")
        session.attach(connection, seq)
        connection.session = session
        # Everything that happened before the RESUME is stored first, so the replay has
        # it; what is numbered meanwhile waits in the outbox (skipped if replayed).
        await self.dispatcher.flushed()
        base_seq, base_payload_id = session.base_seq, session.base_payload_id
        stored = await self.store.payloads_after(base_payload_id)
        if session.connection is not connection:
            return
        number = base_seq
        for payload in stored:
            if session.user_id not in payload.audience:
                continue
            number += 1
            if number > session.sent_seq:
                connection.send_text(dispatch_text(payload.event_name, payload.payload, number))
                session.sent_seq = number
        connection.send_text(dispatch_text("RESUMED", "{}", None))
        session.go_live()
        await self._set_status(session.user_id, "online", None)

    async def update_presence(self, connection, d) -> None:
        session = connection.session
        status = d.get("status") if isinstance(d, dict) else None
        custom = d.get("custom_status") if isinstance(d, dict) else None
        if status not in STATUSES or (custom is not None and (not isinstance(custom, str)
                                                              or len(custom) > MAX_CUSTOM_STATUS)):
            raise FrameError(CLOSE_INVALID_PAYLOAD, "PRESENCE_UPDATE needs a status of " + ", ".join(STATUSES))
        if session is not None:
            await self._set_status(session.user_id, status, custom)

    async def _set_status(self, user_id: str, status: str, custom: str | None) -> None:
        if status == "online":
            self.hs.presence_timers.active(user_id)  # the client reports activity
        state, message = to_matrix_presence(status, custom)
        await self.hs.presence.set_state(user_id, state, message)

    def _lost(self, session: Session) -> None:
        """Its dispatches could not be stored: the session ends, a RESUME is refused."""
        self.registry.remove(session)
        connection = session.connection
        if connection is not None:
            connection.session = None
            session.detach()
            connection.send_text(encode(INVALID_SESSION, False))
            connection.close(CLOSE_UNKNOWN_ERROR, "dispatches lost; identify again")
        self._background("lost", lambda: self.store.delete([session.session_id]))

    def acknowledge(self, session: Session, seq: int) -> None:
        """A heartbeat's sequence: the checkpoint moves there (saved by the sweep)."""
        if seq <= session.sent_seq:
            session.acknowledge(seq)

    def detach(self, session: Session, connection) -> None:
        if session.connection is not connection:
            return
        session.detach()
        now = self.clock.time_ms()
        session.last_seen_ts = now
        if self.stopping:
            return
        self._background("detach", lambda: self.store.save_checkpoints([], [session.session_id], now))
        if not any(s.connection is not None for s in self.registry.of_user(session.user_id)):
            self._background("offline", lambda: self._set_status(session.user_id, "invisible", None))
            # Their last connection is gone: so is their voice connection (issue 9).
            self._background("voice_leave", lambda: self.hs.voice.disconnected(session.user_id))

    # -- READY ------------------------------------------------------------------------

    async def _ready(self, session: Session) -> dict:
        hs, user_id = self.hs, session.user_id
        profile = await hs.profiles_handler.get_local_profile(user_id)
        servers, channel_ids = [], []
        for server in await self._servers_of(user_id):
            servers.append(server_json(server, user_id))
            channel_ids += [c.room_id for c in server.visible_channels(user_id) if c.kind != "category"]
        dms = await list_dms(hs, user_id)
        relationships = await list_relationships(hs, user_id)
        self.translator.remember_relationships(user_id, relationships)
        dm_ids = [dm["id"] for dm in dms if isinstance(dm, dict) and isinstance(dm.get("id"), str)]
        return {"session_id": session.session_id,
                "user": {"id": user_id, "display_name": profile.get("displayname")},
                "servers": servers, "dms": dms, "relationships": relationships,
                "read_states": await self._read_states(user_id, channel_ids + dm_ids)}

    async def _servers_of(self, user_id: str) -> list:
        """The servers the user is a member of, oldest first, from the shared contexts
        (``server_state.user_servers`` would read each space's whole state per user)."""
        servers = []
        for room_id in await self.hs.rooms.get_rooms_for_user(user_id):
            head = await self.hs.room_heads.get(room_id)
            if head is None or (perms.ROLE_EVENT, perms.EVERYONE) not in head.state:
                continue
            server = await self.contexts.server(room_id)
            if server is not None and server.is_member(user_id):
                servers.append(server)
        servers.sort(key=lambda s: (s.created_ts, s.room_id))
        return servers

    async def _read_states(self, user_id: str, room_ids: list[str]) -> list[dict]:
        """Read states of the joined channels and DMs, as /users/@me/read-states has them."""
        joined = set(await self.hs.rooms.get_rooms_for_user(user_id))
        return await read_states_of(self.hs, user_id, [r for r in dict.fromkeys(room_ids) if r in joined])
