-- An endpoint's transformation (JavaScript run on each delivery before it is
-- signed; kept when disabled) and its content filter (JSON list of rules on
-- payload fields); an attempt that sent nothing by the endpoint's own choice
-- says why ('filtered', 'cancelled').
ALTER TABLE endpoint ADD COLUMN transformation_code TEXT;
ALTER TABLE endpoint ADD COLUMN transformation_enabled INTEGER NOT NULL DEFAULT 0;
-- A JSON object of strings, sealed whole, or '{}'.
ALTER TABLE endpoint ADD COLUMN transformation_variables TEXT NOT NULL DEFAULT '{}';
ALTER TABLE endpoint ADD COLUMN transformation_updated_at INTEGER;
ALTER TABLE endpoint ADD COLUMN filters TEXT NOT NULL DEFAULT '[]';
ALTER TABLE attempt ADD COLUMN skipped TEXT;
