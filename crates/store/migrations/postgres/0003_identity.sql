-- Identity: service users, OAuth2 clients, the token signing key, token sessions and refresh
-- tokens. Version 2 is another change's; the runner applies every missing version.
--
-- Kept in step with migrations/sqlite. Citus: every table here is small and becomes a reference
-- table:
--   SELECT create_reference_table('oauth_clients'); SELECT create_reference_table('signing_keys');
--   SELECT create_reference_table('oauth_sessions'); SELECT create_reference_table('refresh_tokens');

-- 'person' signs in with a password; 'service' is the user an OAuth2 confidential client acts as.
ALTER TABLE users ADD COLUMN kind text COLLATE "C" NOT NULL DEFAULT 'person';
CREATE INDEX users_email ON users (email, created_at);

-- OAuth2 clients. A public client has no secret; a confidential one stores the SHA-256 of its
-- secret and acts as its service user for the client_credentials grant.
CREATE TABLE oauth_clients (
    id           text COLLATE "C" PRIMARY KEY,
    name         text COLLATE "C" NOT NULL,
    secret_hash  bytea,
    user_id      text COLLATE "C" REFERENCES users (id) ON DELETE CASCADE,
    grants       jsonb NOT NULL,
    created_at   timestamptz NOT NULL
);
INSERT INTO oauth_clients (id, name, secret_hash, user_id, grants, created_at)
VALUES ('default', 'Default public client', NULL, NULL, '["password","refresh_token"]',
        date_trunc('milliseconds', now()));

-- The HS256 key access tokens are signed with, shared by every node on the database.
CREATE TABLE signing_keys (
    id          text COLLATE "C" PRIMARY KEY,
    secret      bytea NOT NULL,
    created_at  timestamptz NOT NULL
);

-- One grant of tokens to a user through a client: its access tokens name it, its refresh tokens
-- belong to it, and deleting it revokes them all.
CREATE TABLE oauth_sessions (
    id          text COLLATE "C" PRIMARY KEY,
    user_id     text COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id   text COLLATE "C" NOT NULL REFERENCES oauth_clients (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL
);
CREATE INDEX oauth_sessions_user ON oauth_sessions (user_id);
CREATE INDEX oauth_sessions_expires_at ON oauth_sessions (expires_at);

-- Refresh tokens by the SHA-256 of their secret; a used one is kept (used_at set) so that its
-- reuse is recognised and revokes the session.
CREATE TABLE refresh_tokens (
    token_hash  bytea PRIMARY KEY,
    session_id  text COLLATE "C" NOT NULL REFERENCES oauth_sessions (id) ON DELETE CASCADE,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz
);
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);
