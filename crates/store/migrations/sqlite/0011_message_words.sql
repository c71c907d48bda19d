-- A trigger that indexed each inserted message's words made every insert a statement with its own
-- savepoint, at which the full-text index writes what it holds to disk: one index segment per
-- message, and merges without end. Ingest now indexes each batch's new messages with one
-- statement (rules/conversations.rs). Deleted messages still leave the index by trigger: a delete
-- is one statement for many rows.
DROP TRIGGER messages_search_insert;
