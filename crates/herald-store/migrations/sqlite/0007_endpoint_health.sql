-- One health model per endpoint, kept by the attempts themselves: since when
-- every attempt failed, how many in a row, the last error; and who disabled
-- it and when ('manual', 'gone': a 410, 'failing': failed for too long).
-- A disabled endpoint's pending deliveries are parked (status pending or
-- sending, next_attempt_at NULL) until it is enabled again.
ALTER TABLE endpoint ADD COLUMN failing_since INTEGER;
ALTER TABLE endpoint ADD COLUMN consecutive_failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE endpoint ADD COLUMN last_error TEXT;
ALTER TABLE endpoint ADD COLUMN disabled_by TEXT;
ALTER TABLE endpoint ADD COLUMN disabled_at INTEGER;
UPDATE endpoint SET disabled_by = 'manual' WHERE disabled <> 0;
-- Endpoints disabled before this: their pending deliveries are parked too.
UPDATE delivery SET next_attempt_at = NULL, lease_until = NULL
WHERE next_attempt_at IS NOT NULL
  AND endpoint_id IN (SELECT id FROM endpoint WHERE disabled <> 0);
