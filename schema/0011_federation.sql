-- Federation: what each destination has been sent, events relayed for other servers,
-- and the room preview that came with invites from other servers.

-- The federation sender's position per destination: every event of ours (and every
-- relayed event) after last_stream_ordering is still to be sent. Backoff survives restarts.
CREATE TABLE federation_destinations (
    destination TEXT PRIMARY KEY,
    last_stream_ordering BIGINT NOT NULL,
    retry_last_ts BIGINT NOT NULL DEFAULT 0,
    retry_interval_ms BIGINT NOT NULL DEFAULT 0
);

-- Membership events another server handed us through make_join/send_join (and leave,
-- knock): as the resident server we pass them on to the rest of the room.
CREATE TABLE federation_relayed_events (
    event_id TEXT PRIMARY KEY,
    room_id TEXT NOT NULL,
    origin TEXT NOT NULL
);

-- Invites into rooms this server is not in: the stripped state the inviting server
-- sent, shown to the invitee until they join or decline.
CREATE TABLE remote_invites (
    room_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    invite_room_state TEXT NOT NULL,
    PRIMARY KEY (room_id, user_id)
);
