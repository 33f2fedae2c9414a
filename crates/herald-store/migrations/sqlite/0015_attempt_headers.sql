-- What an attempt sent and got back in its headers, for the delivery log: a
-- JSON array of [name, value] pairs, credentials masked. NULL: none (no
-- request made, no response came back, or an attempt from before this).
ALTER TABLE attempt ADD COLUMN request_headers TEXT;
ALTER TABLE attempt ADD COLUMN response_headers TEXT;
