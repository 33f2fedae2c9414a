-- A message sent as raw bytes (Svix's transformationsParams.rawPayload): its
-- payload is that text, delivered with this Content-Type. NULL: JSON.
ALTER TABLE message ADD COLUMN content_type TEXT;
