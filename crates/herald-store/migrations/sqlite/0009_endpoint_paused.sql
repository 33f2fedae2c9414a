-- Until when a worker's breaker paused the endpoint after failures in a row
-- (the pause is each worker's own; this is the latest one, for the health
-- model). Cleared by a success.
ALTER TABLE endpoint ADD COLUMN paused_until INTEGER;
