"""Send-to-device messaging: PUT /sendToDevice queues a message per recipient device;
the device's /sync delivers it in ``to_device.events`` and, once the device syncs with a
token past it, it is deleted.

Messages to other servers' users go, one ``m.direct_to_device`` EDU per server, through
``remote_sender`` (set by federation; without it they are dropped, with a log line).
Messages from other servers arrive through ``deliver_remote``.
"""

from __future__ import annotations

import secrets
from typing import Awaitable, Callable

from twisted.logger import Logger

from homeserver.handlers.e2e_keys import server_of
from homeserver.http.errors import invalid_param
from homeserver.http.request import field
from homeserver.notifier import StreamToken
from storage.stores.to_device import ToDeviceStore

log = Logger()


class ToDeviceHandler:
    def __init__(self, server_name: str, clock, notifier, store: ToDeviceStore,
                 load_stream_positions: Callable[[], Awaitable[None]]):
        self._server_name = server_name
        self._clock = clock
        self._notifier = notifier
        self._store = store
        self._load_stream_positions = load_stream_positions
        # (destination server, m.direct_to_device EDU content): set when federating.
        self.remote_sender: Callable[[str, dict], None] | None = None
        self._listeners: list[Callable[[str, str, list[tuple[str, str, dict]]], None]] = []

    def add_listener(self, listener: Callable[[str, str, list[tuple[str, str, dict]]], None]) -> None:
        """``listener(sender, event_type, messages)`` after messages for local users are
        stored (``messages``: ``(user, device ID or '*', content)``); not for a repeated
        transaction ID."""
        self._listeners.append(listener)

    def _tell_listeners(self, sender: str, event_type: str, messages: list[tuple[str, str, dict]]) -> None:
        for listener in self._listeners:
            try:
                listener(sender, event_type, messages)
            except Exception:
                log.failure("to-device listener failed")

    async def send(self, sender: str, sender_device: str, event_type: str, txn_id: str, body: dict) -> None:
        """Queue the messages of one /sendToDevice request; a repeated txn_id of the
        same device sends nothing again."""
        await self._load_stream_positions()
        messages = field(body, "messages", dict)
        local: list[tuple[str, str, dict]] = []
        remote: dict[str, dict[str, dict[str, dict]]] = {}  # server -> user -> device -> content
        for user_id, devices in messages.items():
            if not isinstance(devices, dict):
                raise invalid_param(f"'messages.{user_id}' must map device IDs to message contents")
            for device_id, content in devices.items():
                if not isinstance(content, dict):
                    raise invalid_param(f"The message to {user_id} {device_id} must be an object")
                server = server_of(user_id)
                if server == self._server_name:
                    local.append((user_id, device_id, content))
                elif server is not None:
                    remote.setdefault(server, {}).setdefault(user_id, {})[device_id] = content
        positions = await self._store.send(sender, sender_device, txn_id, event_type, local, self._clock.time_ms())
        for user_id, position in (positions or {}).items():
            self._notifier.on_user_stream("to_device", position, user_id)
        if positions is not None and local:
            self._tell_listeners(sender, event_type, local)
        if positions is None or not remote:
            return  # a repeated txn_id: the first request sent to the other servers
        if self.remote_sender is None:
            log.info("dropped to-device messages for {count} other servers (no federation)", count=len(remote))
            return
        message_id = secrets.token_urlsafe(12)
        for server, by_user in remote.items():
            self.remote_sender(server, {"sender": sender, "type": event_type, "message_id": message_id,
                                        "messages": by_user})

    async def deliver_remote(self, sender: str, event_type: str, message_id: str,
                             messages: list[tuple[str, str, dict]]) -> None:
        """Queue messages from another server's user (checked by the caller) for local
        ``(user, device ID or '*', content)``; a repeated ``message_id`` of the sender
        queues nothing again."""
        await self._load_stream_positions()
        positions = await self._store.send(sender, "", message_id, event_type, messages, self._clock.time_ms())
        for user_id, position in (positions or {}).items():
            self._notifier.on_user_stream("to_device", position, user_id)
        if positions is not None and messages:
            self._tell_listeners(sender, event_type, messages)

    async def sync_section(self, user_id: str, device_id: str, since: StreamToken | None,
                           token: StreamToken) -> tuple[dict, bool]:
        """The device's messages in (since, token]; those up to ``since`` were received
        (the client came back with a later token) and are deleted."""
        await self._load_stream_positions()
        after = since.to_device if since is not None else 0
        current = self._notifier.current_token().to_device
        if after > token.to_device:
            # ``token`` was taken before the positions were loaded (the first /sync after a
            # restart): nothing is read from it; waking this user's long-poll makes its
            # second pass run at once, with a token that does not go backwards.
            self._notifier.on_user_stream("to_device", current, user_id)
        # Never acknowledge past what the stream has handed out (a forged token).
        acknowledged = min(after, current)
        messages = await self._store.take(user_id, device_id, acknowledged, after, token.to_device)
        return {"to_device": {"events": [m.to_json() for m in messages]}}, bool(messages)
