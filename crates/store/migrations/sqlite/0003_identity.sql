-- Identity: service users, OAuth2 clients, the token signing key, token sessions and refresh
-- tokens. Version 2 is another change's; the runner applies every missing version.

-- 'person' signs in with a password; 'service' is the user an OAuth2 confidential client acts as.
ALTER TABLE users ADD COLUMN kind TEXT NOT NULL DEFAULT 'person';
CREATE INDEX users_email ON users (email, created_at);

-- OAuth2 clients. A public client has no secret; a confidential one stores the SHA-256 of its
-- secret and acts as its service user for the client_credentials grant.
CREATE TABLE oauth_clients (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    secret_hash  BLOB,
    user_id      TEXT REFERENCES users (id) ON DELETE CASCADE,
    grants       TEXT NOT NULL,
    created_at   INTEGER NOT NULL
);
INSERT INTO oauth_clients (id, name, secret_hash, user_id, grants, created_at)
VALUES ('default', 'Default public client', NULL, NULL, '["password","refresh_token"]',
        CAST(strftime('%s', 'now') AS INTEGER) * 1000);

-- The HS256 key access tokens are signed with, shared by every node on the database.
CREATE TABLE signing_keys (
    id          TEXT PRIMARY KEY,
    secret      BLOB NOT NULL,
    created_at  INTEGER NOT NULL
);

-- One grant of tokens to a user through a client: its access tokens name it, its refresh tokens
-- belong to it, and deleting it revokes them all.
CREATE TABLE oauth_sessions (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id   TEXT NOT NULL REFERENCES oauth_clients (id) ON DELETE CASCADE,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);
CREATE INDEX oauth_sessions_user ON oauth_sessions (user_id);
CREATE INDEX oauth_sessions_expires_at ON oauth_sessions (expires_at);

-- Refresh tokens by the SHA-256 of their secret; a used one is kept (used_at set) so that its
-- reuse is recognised and revokes the session.
CREATE TABLE refresh_tokens (
    token_hash  BLOB PRIMARY KEY,
    session_id  TEXT NOT NULL REFERENCES oauth_sessions (id) ON DELETE CASCADE,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER
);
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);
