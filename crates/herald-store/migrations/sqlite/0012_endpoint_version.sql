-- Svix's endpoint `version`: kept and answered as the client gave it (1
-- unless told otherwise); nothing in Herald depends on it.
ALTER TABLE endpoint ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
