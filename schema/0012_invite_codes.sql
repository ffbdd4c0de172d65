-- Invite codes of Drocsid servers (spaces): who made them, how often and until when they
-- may be redeemed. A redemption is one conditional UPDATE of ``uses`` (see
-- storage/stores/invite_codes.py), so concurrent redemptions never pass max_uses.

CREATE TABLE invite_codes (
    code TEXT PRIMARY KEY,
    server_id TEXT NOT NULL,
    creator_id TEXT NOT NULL,
    max_uses BIGINT NOT NULL DEFAULT 0,     -- 0: unlimited
    uses BIGINT NOT NULL DEFAULT 0,
    expires_at BIGINT,                      -- ms since the epoch; NULL: never
    created_at BIGINT NOT NULL
);
CREATE INDEX invite_codes_server ON invite_codes (server_id, created_at);
