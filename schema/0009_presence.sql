-- Presence: each user's last state, kept so a restart and other workers see it.

CREATE TABLE presence (
    user_id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    status_msg TEXT,
    last_active_ts BIGINT NOT NULL,
    stream_id BIGINT NOT NULL
);
CREATE INDEX presence_stream ON presence (stream_id);
