-- Webhooks of Drocsid channels (DESIGN.md §2 "webhook"). Each webhook posts as its own
-- virtual user (user_id, in the reserved "_webhook_" namespace), created in the same
-- transaction as the row. Only the SHA-256 of the token is kept: the token itself is
-- shown once, when the webhook is made.

CREATE TABLE webhooks (
    id TEXT PRIMARY KEY,
    server_id TEXT NOT NULL,
    channel_id TEXT NOT NULL,
    creator_id TEXT NOT NULL,
    user_id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    avatar_url TEXT,
    token_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX webhooks_channel ON webhooks (channel_id, created_at);
CREATE INDEX webhooks_server ON webhooks (server_id, created_at);
