-- The ranges the Insights reports read: each report scans one project's rows of a time range, by
-- the time that places them in a bucket (records already have theirs, migration 1). Kept in step
-- between the engines.

CREATE INDEX messages_project_timestamp ON messages (project_id, timestamp);
CREATE INDEX sessions_project_started ON sessions (project_id, started_at);
CREATE INDEX escalations_project_timestamp ON escalations (project_id, timestamp);
CREATE INDEX goal_events_project_timestamp ON goal_events (project_id, timestamp);
