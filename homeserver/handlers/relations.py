"""Relations: bundled aggregations for events clients receive (thread summaries, the
latest edit, references), and pages of relating events and of threads."""

from __future__ import annotations

from typing import Any

from homeserver.events.client_format import client_event
from homeserver.events.event import Event


class RelationsHandler:
    def __init__(self, clock, relations, writer):
        self._clock = clock
        self._relations = relations
        self._writer = writer

    async def bundle(self, events: list[Event], user_id: str) -> dict[str, dict[str, Any]]:
        """event_id -> its ``unsigned["m.relations"]``, for those that have any."""
        ids = [e.event_id for e in events]
        if not ids:
            return {}
        threads = await self._relations.thread_summaries(ids)
        edits = await self._relations.replacements(ids)
        references = await self._relations.references(ids)
        latest_ids = [summary.latest_event_id for summary in threads.values()]
        latest = await self._writer.get_events(latest_ids)
        senders = {e.event_id: e.sender for e in events}
        now = self._clock.time_ms()
        bundles: dict[str, dict[str, Any]] = {}
        for event in events:
            bundle: dict[str, Any] = {}
            summary = threads.get(event.event_id)
            if summary is not None and summary.latest_event_id in latest:
                bundle["m.thread"] = {
                    "latest_event": client_event(latest[summary.latest_event_id], now),
                    "count": summary.count,
                    "current_user_participated": user_id in summary.participants or event.sender == user_id,
                }
            # Only the original sender may edit an event; the newest valid edit wins.
            valid_edits = [e for e in edits.get(event.event_id, []) if e[1] == senders[event.event_id]]
            if valid_edits:
                edit_id, edit_sender, _ = valid_edits[-1]
                edit = (await self._writer.get_events([edit_id])).get(edit_id)
                if edit is not None:
                    bundle["m.replace"] = {"event_id": edit_id, "origin_server_ts": edit.origin_server_ts,
                                           "sender": edit_sender}
            if event.event_id in references:
                bundle["m.reference"] = {"chunk": [{"event_id": r} for r in references[event.event_id]]}
            if bundle:
                bundles[event.event_id] = bundle
        return bundles
