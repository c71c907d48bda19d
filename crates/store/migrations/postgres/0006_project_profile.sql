-- What the reference SDK says about a project besides its name (locale, color, description,
-- handoverConfiguration), kept as one JSON object.
ALTER TABLE projects ADD COLUMN profile jsonb NOT NULL DEFAULT '{}';
