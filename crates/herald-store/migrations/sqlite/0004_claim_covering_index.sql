-- The claim walks due deliveries in order and skips those of endpoints the
-- worker is already busy with. With the endpoint in the index, that walk reads
-- only the index: skipping a busy endpoint's backlog no longer costs a table
-- look-up per row.
DROP INDEX delivery_due;
CREATE INDEX delivery_due ON delivery (next_attempt_at, endpoint_id) WHERE next_attempt_at IS NOT NULL;
