-- The PostgreSQL schema makes project_id part of every unique key of a project's table, which
-- Citus needs to distribute it. The embedded engine has nothing to distribute, so its keys stay.
SELECT 1;
