-- Issue 3: the event catalog and endpoint date formats.

-- Shown on the public catalog page (opt-in: off for new types).
ALTER TABLE event_type ADD COLUMN public INTEGER NOT NULL DEFAULT 0;
-- Refuse messages whose payload does not match the type's schema (opt-in).
ALTER TABLE event_type ADD COLUMN validate_payload INTEGER NOT NULL DEFAULT 0;
-- How the endpoint wants timestamp fields: unix, unix_ms, iso8601, rfc2822.
ALTER TABLE endpoint ADD COLUMN date_format TEXT NOT NULL DEFAULT 'unix';
