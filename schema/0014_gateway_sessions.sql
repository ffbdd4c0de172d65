-- Gateway sessions (/gateway): what a RESUME needs after a dropped socket or a restart.
--
-- A dispatch is stored once, with its audience (the users whose sessions got it). A
-- session's sequence numbers follow from that: from its checkpoint (base_seq after
-- payload base_payload_id), each later payload whose audience names its user is the
-- next number. So a dispatch to a thousand sessions is one row, and the checkpoint
-- moves when the client acknowledges (heartbeat).

CREATE TABLE gateway_sessions (
    session_id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    device_id TEXT,
    created_ts BIGINT NOT NULL,
    last_seen_ts BIGINT NOT NULL,  -- last moment a socket was attached (refreshed while attached)
    base_seq BIGINT NOT NULL,      -- the checkpoint: the session's sequence stood here ...
    base_payload_id BIGINT NOT NULL  -- ... once the payloads up to this one were numbered
);
CREATE INDEX gateway_sessions_user ON gateway_sessions (user_id);

-- An audience is stored once and shared by the payloads that went to the same users
-- (a channel's messages, mostly).
CREATE TABLE gateway_audiences (
    audience_id BIGINT PRIMARY KEY,
    users TEXT NOT NULL  -- JSON array of user IDs
);

CREATE TABLE gateway_payloads (
    payload_id BIGINT PRIMARY KEY,
    event_name TEXT NOT NULL,
    payload TEXT NOT NULL,
    audience_id BIGINT NOT NULL
);
CREATE INDEX gateway_payloads_audience ON gateway_payloads (audience_id);
