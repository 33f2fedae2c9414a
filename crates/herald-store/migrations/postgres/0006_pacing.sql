-- An endpoint's rate limit (throttle_rate, messages per second) is kept
-- across every worker: rate_next_at is the earliest time the next send may
-- start; each send reserves a slot by moving it on. A delivery that was given
-- a later slot waits for it (slotted) and sends then without reserving again.
ALTER TABLE endpoint ADD COLUMN rate_next_at BIGINT;
ALTER TABLE delivery ADD COLUMN slotted BOOLEAN NOT NULL DEFAULT FALSE;
