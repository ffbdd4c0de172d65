-- Accounts, devices and the tokens that authenticate them.
-- Tokens are stored as SHA-256 hashes: a leaked database does not leak sessions.

CREATE TABLE users (
    user_id TEXT PRIMARY KEY,
    password_hash TEXT,
    admin BOOLEAN NOT NULL DEFAULT FALSE,
    is_guest BOOLEAN NOT NULL DEFAULT FALSE,
    deactivated BOOLEAN NOT NULL DEFAULT FALSE,
    appservice_id TEXT,
    created_ts BIGINT NOT NULL
);

CREATE TABLE devices (
    user_id TEXT NOT NULL REFERENCES users (user_id),
    device_id TEXT NOT NULL,
    display_name TEXT,
    created_ts BIGINT NOT NULL,
    last_seen_ts BIGINT,
    last_seen_ip TEXT,
    PRIMARY KEY (user_id, device_id)
);

CREATE TABLE access_tokens (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    created_ts BIGINT NOT NULL,
    -- NULL: never expires (tokens issued without a refresh token)
    expires_ts BIGINT,
    refresh_token_hash TEXT,
    FOREIGN KEY (user_id, device_id) REFERENCES devices (user_id, device_id)
);
CREATE INDEX access_tokens_device ON access_tokens (user_id, device_id);

CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    created_ts BIGINT NOT NULL,
    expires_ts BIGINT,
    FOREIGN KEY (user_id, device_id) REFERENCES devices (user_id, device_id)
);
CREATE INDEX refresh_tokens_device ON refresh_tokens (user_id, device_id);

-- User-interactive authentication sessions (register, password change, device deletion).
CREATE TABLE ui_auth_sessions (
    session_id TEXT PRIMARY KEY,
    purpose TEXT NOT NULL,
    user_id TEXT,
    completed_stages TEXT NOT NULL DEFAULT '[]',
    created_ts BIGINT NOT NULL
);
