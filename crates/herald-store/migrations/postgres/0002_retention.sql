-- Payload retention: a message's payload is expunged (set to '{}') after
-- expires_at, once none of its deliveries is pending; expires_at is then NULL.

ALTER TABLE message ADD COLUMN expires_at BIGINT;
-- Messages stored before retention existed get the default period, 90 days
-- (7776000000 ms; written out, since 90 * 86400000 overflows a 32-bit int).
UPDATE message SET expires_at = created_at + 7776000000;
-- Pruning walks these: expired payloads, and attempts older than the cut-off.
CREATE INDEX message_expires_at ON message (expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX attempt_created_at ON attempt (created_at);
