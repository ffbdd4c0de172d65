-- Other servers' signing keys, fetched from them (GET /_matrix/key/v2/server) or through
-- a notary, once their signatures have been checked. One row per (server, key ID).

CREATE TABLE server_keys (
    server_name TEXT NOT NULL,
    key_id TEXT NOT NULL,
    -- the ed25519 public key, unpadded base64 as published
    verify_key TEXT NOT NULL,
    -- a current key (verify_keys): valid for timestamps up to here, already capped at
    -- fetched_ts + 7 days as the specification asks; NULL for an old key
    valid_until_ts BIGINT,
    -- an old key (old_verify_keys): valid for timestamps before this; NULL for a current key
    expired_ts BIGINT,
    fetched_ts BIGINT NOT NULL,
    -- the whole signed key response the key came in, served again when we act as a notary
    key_json TEXT NOT NULL,
    PRIMARY KEY (server_name, key_id)
);
