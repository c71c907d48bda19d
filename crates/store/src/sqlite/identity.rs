//! Users, organisations, API keys and OAuth2 state in SQLite.

use async_trait::async_trait;
use parley_core::value::unix_millis;
use parley_core::{Caller, ObjectId, OrgRole};
use rusqlite::{Connection, OptionalExtension, params};
use time::OffsetDateTime;

use super::engine::internal;
use super::{SqliteStore, id_of, json_of, json_text, time_of};
use crate::error::{Constraint, StoreError, StoreResult};
use crate::model::{
    ApiKeyInfo, Bootstrap, NewApiKey, NewRefreshToken, NewUser, OAuthClient, Organisation, RefreshOutcome,
    TokenSession, User, UserDeletion, UserKind,
};
use crate::traits::{IdentityStore, OAuthStore};

const USER_COLUMNS: &str = "u.id, u.organisation, u.email, u.name, u.roles, u.kind, u.created_at";

fn user_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        id: id_of(row.get(0)?)?,
        organisation: id_of(row.get(1)?)?,
        email: row.get(2)?,
        name: row.get(3)?,
        roles: json_of(row.get(4)?)?,
        kind: UserKind::parse(&row.get::<_, String>(5)?),
        created_at: time_of(row.get(6)?)?,
    })
}

fn caller_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Caller> {
    Ok(Caller {
        user_id: id_of(row.get(0)?)?,
        organisation: id_of(row.get(1)?)?,
        org_roles: json_of::<Vec<OrgRole>>(row.get(2)?)?,
    })
}

fn insert_organisation(conn: &Connection, organisation: &Organisation) -> StoreResult<()> {
    conn.execute(
        "INSERT INTO organisations (id, name, created_at) VALUES (?1, ?2, ?3)",
        params![organisation.id.to_string(), organisation.name, unix_millis(organisation.created_at)],
    )
    .map(drop)
    .map_err(internal)
}

/// Inserts a user. The writer is the only one, so it checks the email itself and names the
/// constraint the way PostgreSQL does.
fn insert_user(conn: &Connection, new: &NewUser) -> StoreResult<()> {
    let u = &new.user;
    let taken: bool = conn
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM users WHERE organisation = ?1 AND email = ?2)",
            params![u.organisation.to_string(), u.email],
            |row| row.get(0),
        )
        .map_err(internal)?;
    if taken {
        return Err(StoreError::Conflict(Constraint::UserEmail));
    }
    conn.execute(
        "INSERT INTO users (id, organisation, email, name, password_hash, roles, kind, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            u.id.to_string(),
            u.organisation.to_string(),
            u.email,
            u.name,
            new.password_hash,
            json_text(&u.roles),
            u.kind.as_str(),
            unix_millis(u.created_at)
        ],
    )
    .map(drop)
    .map_err(internal)
}

fn insert_key(conn: &Connection, key: &NewApiKey) -> StoreResult<()> {
    conn.execute(
        "INSERT INTO api_keys (id, user_id, name, secret_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            key.id.to_string(),
            key.user_id.to_string(),
            key.name,
            &key.secret_hash[..],
            unix_millis(key.created_at)
        ],
    )
    .map(drop)
    .map_err(internal)
}

#[async_trait]
impl IdentityStore for SqliteStore {
    async fn bootstrap(&self, b: Bootstrap) -> StoreResult<bool> {
        self.engine
            .write(move |conn| {
                let exists: bool = conn
                    .query_row("SELECT EXISTS (SELECT 1 FROM organisations)", [], |r| r.get(0))
                    .map_err(internal)?;
                if exists {
                    return Ok(false);
                }
                let created_at = b.api_key.created_at;
                insert_organisation(
                    conn,
                    &Organisation { id: b.organisation_id, name: b.organisation_name, created_at },
                )?;
                let admin = User {
                    id: b.admin_id,
                    organisation: b.organisation_id,
                    email: b.admin_email,
                    name: "Administrator".into(),
                    roles: b.admin_roles,
                    kind: UserKind::Person,
                    created_at,
                };
                insert_user(conn, &NewUser { user: admin, password_hash: b.admin_password_hash })?;
                insert_key(conn, &b.api_key)?;
                Ok(true)
            })
            .await
    }

    async fn caller_by_key_hash(&self, secret_hash: [u8; 32]) -> StoreResult<Option<Caller>> {
        self.engine
            .read(move |conn| {
                conn.prepare_cached(
                    "SELECT u.id, u.organisation, u.roles FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.secret_hash = ?1",
                )
                .and_then(|mut stmt| stmt.query_row([&secret_hash[..]], caller_from_row).optional())
                .map_err(internal)
            })
            .await
    }

    async fn create_api_key(&self, key: NewApiKey) -> StoreResult<ApiKeyInfo> {
        self.engine
            .write(move |conn| {
                insert_key(conn, &key)?;
                Ok(ApiKeyInfo { id: key.id, name: key.name, created_at: key.created_at })
            })
            .await
    }

    async fn list_api_keys(&self, user_id: ObjectId) -> StoreResult<Vec<ApiKeyInfo>> {
        self.engine
            .read(move |conn| {
                let mut stmt = conn
                    .prepare_cached(
                        "SELECT id, name, created_at FROM api_keys WHERE user_id = ?1 ORDER BY created_at, id",
                    )
                    .map_err(internal)?;
                let rows = stmt
                    .query_map([user_id.to_string()], |row| {
                        Ok(ApiKeyInfo { id: id_of(row.get(0)?)?, name: row.get(1)?, created_at: time_of(row.get(2)?)? })
                    })
                    .map_err(internal)?;
                rows.collect::<rusqlite::Result<Vec<_>>>().map_err(internal)
            })
            .await
    }

    async fn revoke_api_key(&self, user_id: ObjectId, key_id: ObjectId) -> StoreResult<bool> {
        self.engine
            .write(move |conn| {
                conn.execute(
                    "DELETE FROM api_keys WHERE id = ?1 AND user_id = ?2",
                    params![key_id.to_string(), user_id.to_string()],
                )
                .map(|n| n > 0)
                .map_err(internal)
            })
            .await
    }

    async fn api_key_owner(&self, key_id: ObjectId) -> StoreResult<Option<ObjectId>> {
        self.engine
            .read(move |conn| {
                conn.query_row("SELECT user_id FROM api_keys WHERE id = ?1", [key_id.to_string()], |row| {
                    id_of(row.get(0)?)
                })
                .optional()
                .map_err(internal)
            })
            .await
    }

    async fn create_organisation(&self, organisation: Organisation, admin: NewUser, key: NewApiKey) -> StoreResult<()> {
        self.engine
            .write(move |conn| {
                insert_organisation(conn, &organisation)?;
                insert_user(conn, &admin)?;
                insert_key(conn, &key)
            })
            .await
    }

    async fn list_organisations(&self) -> StoreResult<Vec<Organisation>> {
        self.engine
            .read(|conn| {
                let mut stmt = conn
                    .prepare_cached("SELECT id, name, created_at FROM organisations ORDER BY created_at, id")
                    .map_err(internal)?;
                stmt.query_map([], |row| {
                    Ok(Organisation { id: id_of(row.get(0)?)?, name: row.get(1)?, created_at: time_of(row.get(2)?)? })
                })
                .and_then(|rows| rows.collect())
                .map_err(internal)
            })
            .await
    }

    async fn create_user(&self, user: NewUser) -> StoreResult<()> {
        self.engine.write(move |conn| insert_user(conn, &user)).await
    }

    async fn user(&self, organisation: ObjectId, id: ObjectId) -> StoreResult<Option<User>> {
        self.engine
            .read(move |conn| {
                conn.prepare_cached(&format!(
                    "SELECT {USER_COLUMNS} FROM users u WHERE u.id = ?1 AND u.organisation = ?2"
                ))
                .and_then(|mut stmt| {
                    stmt.query_row([id.to_string(), organisation.to_string()], user_from_row).optional()
                })
                .map_err(internal)
            })
            .await
    }

    async fn list_users(&self, organisation: ObjectId, skip: u64, limit: u32) -> StoreResult<(Vec<User>, u64)> {
        self.engine
            .read(move |conn| {
                let org = organisation.to_string();
                let users = conn
                    .prepare_cached(&format!(
                        "SELECT {USER_COLUMNS} FROM users u WHERE u.organisation = ?1 ORDER BY u.created_at, u.id LIMIT ?2 OFFSET ?3"
                    ))
                    .and_then(|mut stmt| {
                        stmt.query_map(params![org, limit, skip as i64], user_from_row)?.collect::<rusqlite::Result<Vec<_>>>()
                    })
                    .map_err(internal)?;
                let total: i64 = conn
                    .query_row("SELECT COUNT(*) FROM users WHERE organisation = ?1", [&org], |row| row.get(0))
                    .map_err(internal)?;
                Ok((users, total as u64))
            })
            .await
    }

    async fn people_by_email(&self, email: &str) -> StoreResult<Vec<(User, Option<String>)>> {
        let email = email.to_owned();
        self.engine
            .read(move |conn| {
                conn.prepare_cached(&format!(
                    "SELECT {USER_COLUMNS}, u.password_hash FROM users u WHERE u.email = ?1 AND u.kind = 'person' \
                     ORDER BY u.created_at, u.id"
                ))
                .and_then(|mut stmt| stmt.query_map([email], |row| Ok((user_from_row(row)?, row.get(7)?)))?.collect())
                .map_err(internal)
            })
            .await
    }

    async fn delete_user(&self, organisation: ObjectId, id: ObjectId) -> StoreResult<UserDeletion> {
        self.engine
            .write(move |conn| {
                let org = organisation.to_string();
                let mut stmt =
                    conn.prepare_cached("SELECT id, roles FROM users WHERE organisation = ?1").map_err(internal)?;
                let users: Vec<(ObjectId, Vec<OrgRole>)> = stmt
                    .query_map([&org], |row| Ok((id_of(row.get(0)?)?, json_of(row.get(1)?)?)))
                    .and_then(|rows| rows.collect())
                    .map_err(internal)?;
                Ok(match users.iter().find(|(user, _)| *user == id) {
                    None => UserDeletion::NotFound,
                    Some((_, roles)) if is_last_admin(&users, id, roles) => UserDeletion::LastAdmin,
                    Some(_) => {
                        conn.execute("DELETE FROM users WHERE id = ?1", [id.to_string()]).map_err(internal)?;
                        UserDeletion::Deleted
                    }
                })
            })
            .await
    }
}

/// Whether `id`, holding `roles`, is the only admin among `users`.
pub(crate) fn is_last_admin(users: &[(ObjectId, Vec<OrgRole>)], id: ObjectId, roles: &[OrgRole]) -> bool {
    roles.contains(&OrgRole::Admin)
        && !users.iter().any(|(other, roles)| *other != id && roles.contains(&OrgRole::Admin))
}

fn purge_expired_sessions(conn: &Connection, now: OffsetDateTime) -> StoreResult<()> {
    conn.execute("DELETE FROM oauth_sessions WHERE expires_at < ?1", [unix_millis(now)]).map(drop).map_err(internal)
}

fn insert_refresh_token(conn: &Connection, session: ObjectId, token: &NewRefreshToken) -> StoreResult<()> {
    conn.execute(
        "INSERT INTO refresh_tokens (token_hash, session_id, expires_at, used_at) VALUES (?1, ?2, ?3, NULL)",
        params![&token.hash[..], session.to_string(), unix_millis(token.expires_at)],
    )
    .map(drop)
    .map_err(internal)
}

#[async_trait]
impl OAuthStore for SqliteStore {
    async fn signing_key(&self, candidate: Vec<u8>) -> StoreResult<Vec<u8>> {
        self.engine
            .write(move |conn| {
                conn.execute(
                    "INSERT INTO signing_keys (id, secret, created_at) VALUES ('access-tokens', ?1, ?2) ON CONFLICT (id) DO NOTHING",
                    params![candidate, unix_millis(parley_core::value::now())],
                )
                .map_err(internal)?;
                conn.query_row("SELECT secret FROM signing_keys WHERE id = 'access-tokens'", [], |row| row.get(0))
                    .map_err(internal)
            })
            .await
    }

    async fn oauth_client(&self, id: &str) -> StoreResult<Option<OAuthClient>> {
        let id = id.to_owned();
        self.engine
            .read(move |conn| {
                conn.query_row(
                    "SELECT id, name, secret_hash, user_id, grants, created_at FROM oauth_clients WHERE id = ?1",
                    [id],
                    |row| {
                        let hash: Option<Vec<u8>> = row.get(2)?;
                        let user: Option<String> = row.get(3)?;
                        Ok(OAuthClient {
                            id: row.get(0)?,
                            name: row.get(1)?,
                            secret_hash: hash.and_then(|h| h.try_into().ok()),
                            user_id: user.map(id_of).transpose()?,
                            grants: json_of(row.get(4)?)?,
                            created_at: time_of(row.get(5)?)?,
                        })
                    },
                )
                .optional()
                .map_err(internal)
            })
            .await
    }

    async fn create_oauth_client(&self, client: OAuthClient, service_user: NewUser) -> StoreResult<()> {
        self.engine
            .write(move |conn| {
                insert_user(conn, &service_user)?;
                conn.execute(
                    "INSERT INTO oauth_clients (id, name, secret_hash, user_id, grants, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![
                        client.id,
                        client.name,
                        client.secret_hash.map(|h| h.to_vec()),
                        client.user_id.map(|id| id.to_string()),
                        json_text(&client.grants),
                        unix_millis(client.created_at)
                    ],
                )
                .map(drop)
                .map_err(internal)
            })
            .await
    }

    async fn start_session(&self, session: TokenSession, refresh: Option<NewRefreshToken>) -> StoreResult<()> {
        self.engine
            .write(move |conn| {
                purge_expired_sessions(conn, session.created_at)?;
                conn.execute(
                    "INSERT INTO oauth_sessions (id, user_id, client_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![
                        session.id.to_string(),
                        session.user_id.to_string(),
                        session.client_id,
                        unix_millis(session.created_at),
                        unix_millis(session.expires_at)
                    ],
                )
                .map_err(internal)?;
                match &refresh {
                    Some(token) => insert_refresh_token(conn, session.id, token),
                    None => Ok(()),
                }
            })
            .await
    }

    async fn rotate_refresh_token(
        &self,
        presented: [u8; 32],
        successor: NewRefreshToken,
        now: OffsetDateTime,
    ) -> StoreResult<RefreshOutcome> {
        self.engine
            .write(move |conn| {
                let found: Option<(String, i64, Option<i64>)> = conn
                    .query_row(
                        "SELECT session_id, expires_at, used_at FROM refresh_tokens WHERE token_hash = ?1",
                        [&presented[..]],
                        |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
                    )
                    .optional()
                    .map_err(internal)?;
                let Some((session_id, expires_at, used_at)) = found else {
                    return Ok(RefreshOutcome::Invalid);
                };
                if used_at.is_some() {
                    conn.execute("DELETE FROM oauth_sessions WHERE id = ?1", [&session_id]).map_err(internal)?;
                    return Ok(RefreshOutcome::Reused);
                }
                if expires_at <= unix_millis(now) {
                    return Ok(RefreshOutcome::Invalid);
                }
                conn.execute(
                    "UPDATE refresh_tokens SET used_at = ?2 WHERE token_hash = ?1",
                    params![&presented[..], unix_millis(now)],
                )
                .map_err(internal)?;
                let session_id = id_of(session_id).map_err(internal)?;
                insert_refresh_token(conn, session_id, &successor)?;
                conn.execute(
                    "UPDATE oauth_sessions SET expires_at = ?2 WHERE id = ?1",
                    params![session_id.to_string(), unix_millis(successor.expires_at)],
                )
                .map_err(internal)?;
                let found = conn
                    .query_row(
                        "SELECT u.id, u.organisation, u.roles, s.client_id, s.created_at, s.expires_at \
                         FROM oauth_sessions s JOIN users u ON u.id = s.user_id WHERE s.id = ?1",
                        [session_id.to_string()],
                        |row| {
                            let caller = caller_from_row(row)?;
                            let session = TokenSession {
                                id: session_id,
                                user_id: caller.user_id,
                                client_id: row.get(3)?,
                                created_at: time_of(row.get(4)?)?,
                                expires_at: time_of(row.get(5)?)?,
                            };
                            Ok(RefreshOutcome::Rotated { session, caller })
                        },
                    )
                    .optional()
                    .map_err(internal)?;
                Ok(found.unwrap_or(RefreshOutcome::Invalid))
            })
            .await
    }

    async fn session_caller(&self, session: ObjectId, user_id: ObjectId) -> StoreResult<Option<Caller>> {
        self.engine
            .read(move |conn| {
                conn.prepare_cached(
                    "SELECT u.id, u.organisation, u.roles FROM oauth_sessions s JOIN users u ON u.id = s.user_id \
                     WHERE s.id = ?1 AND s.user_id = ?2",
                )
                .and_then(|mut stmt| {
                    stmt.query_row([session.to_string(), user_id.to_string()], caller_from_row).optional()
                })
                .map_err(internal)
            })
            .await
    }

    async fn revoke_session(&self, session: ObjectId) -> StoreResult<bool> {
        self.engine
            .write(move |conn| {
                conn.execute("DELETE FROM oauth_sessions WHERE id = ?1", [session.to_string()])
                    .map(|n| n > 0)
                    .map_err(internal)
            })
            .await
    }

    async fn revoke_refresh_token(&self, presented: [u8; 32]) -> StoreResult<bool> {
        self.engine
            .write(move |conn| {
                conn.execute(
                    "DELETE FROM oauth_sessions WHERE id = (SELECT session_id FROM refresh_tokens WHERE token_hash = ?1)",
                    [&presented[..]],
                )
                .map(|n| n > 0)
                .map_err(internal)
            })
            .await
    }
}
