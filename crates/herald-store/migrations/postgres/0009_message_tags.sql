-- Svix's message tags (a JSON list of strings, or NULL), filterable in the
-- logs, and the deliverAt a message was scheduled for (UNIX ms, or NULL).
ALTER TABLE message ADD COLUMN tags TEXT;
ALTER TABLE message ADD COLUMN deliver_at BIGINT;
