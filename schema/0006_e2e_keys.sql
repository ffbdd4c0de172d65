-- End-to-end encryption: the keys clients publish (the server stores and forwards them,
-- it never uses them), send-to-device messages, and the device-list change stream.
-- Everything is kept as the JSON the client uploaded; signatures added later through
-- /keys/signatures/upload live in their own table and are merged in when read.

-- Two streams of the sync token, as counters: to-device rows are deleted once read, so
-- MAX(stream_id) could go backwards; a counter cannot. Writers increment it inside their
-- transaction (the row lock orders concurrent writers on PostgreSQL).
CREATE TABLE e2e_stream_positions (
    stream TEXT PRIMARY KEY,
    position BIGINT NOT NULL
);
INSERT INTO e2e_stream_positions (stream, position) VALUES ('to_device', 0);
INSERT INTO e2e_stream_positions (stream, position) VALUES ('device_lists', 0);

-- A device's identity keys (the signed device_keys object of /keys/upload).
CREATE TABLE e2e_device_keys (
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    key_json TEXT NOT NULL,
    ts BIGINT NOT NULL,
    PRIMARY KEY (user_id, device_id)
);

-- Unclaimed one-time keys; a claim deletes the row. Handed out oldest upload first.
CREATE TABLE e2e_one_time_keys (
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    key_id TEXT NOT NULL,
    key_json TEXT NOT NULL,
    ts BIGINT NOT NULL,
    PRIMARY KEY (user_id, device_id, algorithm, key_id)
);
CREATE INDEX e2e_one_time_keys_order ON e2e_one_time_keys (user_id, device_id, algorithm, ts);

-- At most one fallback key per device and algorithm; claimed again and again once the
-- one-time keys run out (used = it has been handed out).
CREATE TABLE e2e_fallback_keys (
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    key_id TEXT NOT NULL,
    key_json TEXT NOT NULL,
    used BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (user_id, device_id, algorithm)
);

-- Cross-signing keys: key_type is master, self_signing or user_signing.
CREATE TABLE e2e_cross_signing_keys (
    user_id TEXT NOT NULL,
    key_type TEXT NOT NULL,
    -- the unpadded base64 ed25519 public key (the key ID without "ed25519:")
    public_key TEXT NOT NULL,
    key_json TEXT NOT NULL,
    ts BIGINT NOT NULL,
    PRIMARY KEY (user_id, key_type)
);

-- Signatures uploaded through /keys/signatures/upload. target_key_id is a device ID or a
-- cross-signing public key of target_user_id; signer_key_id is the full "ed25519:..." ID.
CREATE TABLE e2e_cross_signing_signatures (
    signer_user_id TEXT NOT NULL,
    signer_key_id TEXT NOT NULL,
    target_user_id TEXT NOT NULL,
    target_key_id TEXT NOT NULL,
    signature TEXT NOT NULL,
    PRIMARY KEY (target_user_id, target_key_id, signer_user_id, signer_key_id)
);

-- One row per change of a user's device list or keys. notify_only: NULL = everyone who
-- shares a room with user_id (and the user); otherwise only that user (a signature made
-- by their user-signing key, which nobody else sees).
CREATE TABLE device_lists_stream (
    stream_id BIGINT NOT NULL,
    user_id TEXT NOT NULL,
    device_id TEXT,
    notify_only TEXT
);
CREATE INDEX device_lists_stream_id ON device_lists_stream (stream_id);

-- Send-to-device messages waiting for their recipient device's next /sync.
CREATE TABLE device_inbox (
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    stream_id BIGINT NOT NULL,
    sender TEXT NOT NULL,
    type TEXT NOT NULL,
    content TEXT NOT NULL,
    PRIMARY KEY (user_id, device_id, stream_id)
);

-- Transaction IDs of /sendToDevice, so that a retried request sends nothing twice.
CREATE TABLE device_inbox_txns (
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    txn_id TEXT NOT NULL,
    ts BIGINT NOT NULL,
    PRIMARY KEY (user_id, device_id, txn_id)
);
