-- Email addresses of accounts and the one-time tokens mailed to them (password reset,
-- address verification). Only the SHA-256 of a token is kept: a leaked database does
-- not leak working links. Redemption is one conditional UPDATE of used_ts (see
-- storage/stores/email_tokens.py), so two redemptions at once cannot both succeed.

-- One address per account. Unverified claims do not block anyone: an address belongs
-- to the one account that verified it (the partial unique index), so nobody can squat
-- on another person's address by typing it in first.
CREATE TABLE user_emails (
    user_id TEXT PRIMARY KEY REFERENCES users (user_id),
    address TEXT NOT NULL,                  -- lower-cased
    verified_ts BIGINT,                     -- ms since the epoch; NULL: not verified
    added_ts BIGINT NOT NULL
);
CREATE INDEX user_emails_address ON user_emails (address);
CREATE UNIQUE INDEX user_emails_verified_address ON user_emails (address) WHERE verified_ts IS NOT NULL;

CREATE TABLE email_tokens (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (user_id),
    purpose TEXT NOT NULL CHECK (purpose IN ('reset', 'verify')),
    address TEXT NOT NULL,                  -- where it was mailed
    created_ts BIGINT NOT NULL,
    expires_ts BIGINT NOT NULL,
    used_ts BIGINT                          -- NULL: still usable (until expires_ts)
);
CREATE INDEX email_tokens_user ON email_tokens (user_id, purpose);
