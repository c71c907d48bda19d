//! Users, organisations, API keys and OAuth2 state in PostgreSQL.

use async_trait::async_trait;
use parley_core::{Caller, ObjectId, OrgRole};
use time::OffsetDateTime;
use tokio_postgres::types::Json;
use tokio_postgres::{GenericClient, Row};

use super::convert::millis;
use super::engine::{LOCK_KEY, internal};
use super::{PgStore, id_of, time_of};
use crate::error::StoreResult;
use crate::model::{
    ApiKeyInfo, Bootstrap, GrantType, NewApiKey, NewRefreshToken, NewUser, OAuthClient, Organisation, RefreshOutcome,
    TokenSession, User, UserDeletion, UserKind,
};
use crate::sqlite::is_last_admin;
use crate::traits::{IdentityStore, OAuthStore};

const USER_COLUMNS: &str = "u.id, u.organisation, u.email, u.name, u.roles, u.kind, u.created_at";

fn user_from_row(row: &Row) -> StoreResult<User> {
    Ok(User {
        id: id_of(row, 0)?,
        organisation: id_of(row, 1)?,
        email: row.try_get(2).map_err(internal)?,
        name: row.try_get(3).map_err(internal)?,
        roles: row.try_get::<_, Json<Vec<OrgRole>>>(4).map_err(internal)?.0,
        kind: UserKind::parse(row.try_get(5).map_err(internal)?),
        created_at: time_of(row, 6)?,
    })
}

fn caller_from_row(row: &Row) -> StoreResult<Caller> {
    Ok(Caller {
        user_id: id_of(row, 0)?,
        organisation: id_of(row, 1)?,
        org_roles: row.try_get::<_, Json<Vec<OrgRole>>>(2).map_err(internal)?.0,
    })
}

fn organisation_from_row(row: &Row) -> StoreResult<Organisation> {
    Ok(Organisation { id: id_of(row, 0)?, name: row.try_get(1).map_err(internal)?, created_at: time_of(row, 2)? })
}

async fn insert_organisation(client: &impl GenericClient, organisation: &Organisation) -> StoreResult<()> {
    client
        .execute(
            "INSERT INTO organisations (id, name, created_at) VALUES ($1, $2, $3)",
            &[&organisation.id.to_string(), &organisation.name, &millis(organisation.created_at)],
        )
        .await
        .map(drop)
        .map_err(internal)
}

async fn insert_user(client: &impl GenericClient, new: &NewUser) -> StoreResult<()> {
    let u = &new.user;
    client
        .execute(
            "INSERT INTO users (id, organisation, email, name, password_hash, roles, kind, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[
                &u.id.to_string(),
                &u.organisation.to_string(),
                &u.email,
                &u.name,
                &new.password_hash,
                &Json(&u.roles),
                &u.kind.as_str(),
                &millis(u.created_at),
            ],
        )
        .await
        .map(drop)
        .map_err(internal)
}

async fn insert_key(client: &impl GenericClient, key: &NewApiKey) -> StoreResult<()> {
    client
        .execute(
            "INSERT INTO api_keys (id, user_id, name, secret_hash, created_at) VALUES ($1, $2, $3, $4, $5)",
            &[&key.id.to_string(), &key.user_id.to_string(), &key.name, &&key.secret_hash[..], &millis(key.created_at)],
        )
        .await
        .map(drop)
        .map_err(internal)
}

async fn insert_refresh_token(
    client: &impl GenericClient,
    session: ObjectId,
    token: &NewRefreshToken,
) -> StoreResult<()> {
    client
        .execute(
            "INSERT INTO refresh_tokens (token_hash, session_id, expires_at, used_at) VALUES ($1, $2, $3, NULL)",
            &[&&token.hash[..], &session.to_string(), &millis(token.expires_at)],
        )
        .await
        .map(drop)
        .map_err(internal)
}

#[async_trait]
impl IdentityStore for PgStore {
    async fn bootstrap(&self, b: Bootstrap) -> StoreResult<bool> {
        let mut client = self.engine.get().await?;
        let tx = client.transaction().await.map_err(internal)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_KEY]).await.map_err(internal)?;
        let exists: bool =
            tx.query_one("SELECT EXISTS (SELECT 1 FROM organisations)", &[]).await.map_err(internal)?.get(0);
        if exists {
            return Ok(false);
        }
        let created_at = b.api_key.created_at;
        insert_organisation(&*tx, &Organisation { id: b.organisation_id, name: b.organisation_name, created_at })
            .await?;
        let admin = User {
            id: b.admin_id,
            organisation: b.organisation_id,
            email: b.admin_email,
            name: "Administrator".into(),
            roles: b.admin_roles,
            kind: UserKind::Person,
            created_at,
        };
        insert_user(&*tx, &NewUser { user: admin, password_hash: b.admin_password_hash }).await?;
        insert_key(&*tx, &b.api_key).await?;
        tx.commit().await.map_err(internal)?;
        Ok(true)
    }

    async fn caller_by_key_hash(&self, secret_hash: [u8; 32]) -> StoreResult<Option<Caller>> {
        let client = self.engine.get().await?;
        let statement = client
            .prepare_cached(
                "SELECT u.id, u.organisation, u.roles FROM api_keys k JOIN users u ON u.id = k.user_id \
                 WHERE k.secret_hash = $1",
            )
            .await
            .map_err(internal)?;
        let row = client.query_opt(&statement, &[&&secret_hash[..]]).await.map_err(internal)?;
        row.as_ref().map(caller_from_row).transpose()
    }

    async fn create_api_key(&self, key: NewApiKey) -> StoreResult<ApiKeyInfo> {
        let client = self.engine.get().await?;
        insert_key(&**client, &key).await?;
        Ok(ApiKeyInfo { id: key.id, name: key.name, created_at: millis(key.created_at) })
    }

    async fn list_api_keys(&self, user_id: ObjectId) -> StoreResult<Vec<ApiKeyInfo>> {
        let client = self.engine.get().await?;
        let statement = client
            .prepare_cached("SELECT id, name, created_at FROM api_keys WHERE user_id = $1 ORDER BY created_at, id")
            .await
            .map_err(internal)?;
        let rows = client.query(&statement, &[&user_id.to_string()]).await.map_err(internal)?;
        rows.iter()
            .map(|row| {
                Ok(ApiKeyInfo {
                    id: id_of(row, 0)?,
                    name: row.try_get(1).map_err(internal)?,
                    created_at: time_of(row, 2)?,
                })
            })
            .collect()
    }

    async fn revoke_api_key(&self, user_id: ObjectId, key_id: ObjectId) -> StoreResult<bool> {
        let client = self.engine.get().await?;
        let statement =
            client.prepare_cached("DELETE FROM api_keys WHERE id = $1 AND user_id = $2").await.map_err(internal)?;
        let deleted =
            client.execute(&statement, &[&key_id.to_string(), &user_id.to_string()]).await.map_err(internal)?;
        Ok(deleted > 0)
    }

    async fn api_key_owner(&self, key_id: ObjectId) -> StoreResult<Option<ObjectId>> {
        let client = self.engine.get().await?;
        let row = client
            .query_opt("SELECT user_id FROM api_keys WHERE id = $1", &[&key_id.to_string()])
            .await
            .map_err(internal)?;
        row.map(|row| id_of(&row, 0)).transpose()
    }

    async fn create_organisation(&self, organisation: Organisation, admin: NewUser, key: NewApiKey) -> StoreResult<()> {
        let mut client = self.engine.get().await?;
        let tx = client.transaction().await.map_err(internal)?;
        insert_organisation(&*tx, &organisation).await?;
        insert_user(&*tx, &admin).await?;
        insert_key(&*tx, &key).await?;
        tx.commit().await.map_err(internal)
    }

    async fn list_organisations(&self) -> StoreResult<Vec<Organisation>> {
        let client = self.engine.get().await?;
        let rows = client
            .query("SELECT id, name, created_at FROM organisations ORDER BY created_at, id", &[])
            .await
            .map_err(internal)?;
        rows.iter().map(organisation_from_row).collect()
    }

    async fn create_user(&self, user: NewUser) -> StoreResult<()> {
        let client = self.engine.get().await?;
        insert_user(&**client, &user).await
    }

    async fn user(&self, organisation: ObjectId, id: ObjectId) -> StoreResult<Option<User>> {
        let client = self.engine.get().await?;
        let statement = client
            .prepare_cached(&format!("SELECT {USER_COLUMNS} FROM users u WHERE u.id = $1 AND u.organisation = $2"))
            .await
            .map_err(internal)?;
        let row =
            client.query_opt(&statement, &[&id.to_string(), &organisation.to_string()]).await.map_err(internal)?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn list_users(&self, organisation: ObjectId, skip: u64, limit: u32) -> StoreResult<(Vec<User>, u64)> {
        let client = self.engine.get().await?;
        let org = organisation.to_string();
        let (limit, skip) = (i64::from(limit), i64::try_from(skip).unwrap_or(i64::MAX));
        let rows = client
            .query(
                &format!(
                    "SELECT {USER_COLUMNS} FROM users u WHERE u.organisation = $1 \
                     ORDER BY u.created_at, u.id LIMIT $2 OFFSET $3"
                ),
                &[&org, &limit, &skip],
            )
            .await
            .map_err(internal)?;
        let total: i64 = client
            .query_one("SELECT COUNT(*) FROM users WHERE organisation = $1", &[&org])
            .await
            .map_err(internal)?
            .get(0);
        Ok((rows.iter().map(user_from_row).collect::<StoreResult<_>>()?, total as u64))
    }

    async fn people_by_email(&self, email: &str) -> StoreResult<Vec<(User, Option<String>)>> {
        let client = self.engine.get().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {USER_COLUMNS}, u.password_hash FROM users u WHERE u.email = $1 AND u.kind = 'person' \
                     ORDER BY u.created_at, u.id"
                ),
                &[&email],
            )
            .await
            .map_err(internal)?;
        rows.iter().map(|row| Ok((user_from_row(row)?, row.try_get(7).map_err(internal)?))).collect()
    }

    async fn delete_user(&self, organisation: ObjectId, id: ObjectId) -> StoreResult<UserDeletion> {
        let mut client = self.engine.get().await?;
        let tx = client.transaction().await.map_err(internal)?;
        let org = organisation.to_string();
        // Serialises deletions within the organisation, so that two admins deleting each other
        // cannot both pass the last-admin check.
        tx.execute("SELECT 1 FROM organisations WHERE id = $1 FOR UPDATE", &[&org]).await.map_err(internal)?;
        let rows = tx.query("SELECT id, roles FROM users WHERE organisation = $1", &[&org]).await.map_err(internal)?;
        let users = rows
            .iter()
            .map(|row| Ok((id_of(row, 0)?, row.try_get::<_, Json<Vec<OrgRole>>>(1).map_err(internal)?.0)))
            .collect::<StoreResult<Vec<_>>>()?;
        let outcome = match users.iter().find(|(user, _)| *user == id) {
            None => UserDeletion::NotFound,
            Some((_, roles)) if is_last_admin(&users, id, roles) => UserDeletion::LastAdmin,
            Some(_) => {
                tx.execute("DELETE FROM users WHERE id = $1", &[&id.to_string()]).await.map_err(internal)?;
                UserDeletion::Deleted
            }
        };
        tx.commit().await.map_err(internal)?;
        Ok(outcome)
    }
}

#[async_trait]
impl OAuthStore for PgStore {
    async fn signing_key(&self, candidate: Vec<u8>) -> StoreResult<Vec<u8>> {
        let client = self.engine.get().await?;
        client
            .execute(
                "INSERT INTO signing_keys (id, secret, created_at) VALUES ('access-tokens', $1, $2) \
                 ON CONFLICT (id) DO NOTHING",
                &[&candidate, &millis(parley_core::value::now())],
            )
            .await
            .map_err(internal)?;
        let row = client
            .query_one("SELECT secret FROM signing_keys WHERE id = 'access-tokens'", &[])
            .await
            .map_err(internal)?;
        row.try_get(0).map_err(internal)
    }

    async fn oauth_client(&self, id: &str) -> StoreResult<Option<OAuthClient>> {
        let client = self.engine.get().await?;
        let row = client
            .query_opt(
                "SELECT id, name, secret_hash, user_id, grants, created_at FROM oauth_clients WHERE id = $1",
                &[&id],
            )
            .await
            .map_err(internal)?;
        let Some(row) = row else { return Ok(None) };
        let hash: Option<Vec<u8>> = row.try_get(2).map_err(internal)?;
        let user: Option<String> = row.try_get(3).map_err(internal)?;
        Ok(Some(OAuthClient {
            id: row.try_get(0).map_err(internal)?,
            name: row.try_get(1).map_err(internal)?,
            secret_hash: hash.and_then(|h| h.try_into().ok()),
            user_id: user.and_then(|u| ObjectId::parse(&u).ok()),
            grants: row.try_get::<_, Json<Vec<GrantType>>>(4).map_err(internal)?.0,
            created_at: time_of(&row, 5)?,
        }))
    }

    async fn create_oauth_client(&self, c: OAuthClient, service_user: NewUser) -> StoreResult<()> {
        let mut client = self.engine.get().await?;
        let tx = client.transaction().await.map_err(internal)?;
        insert_user(&*tx, &service_user).await?;
        tx.execute(
            "INSERT INTO oauth_clients (id, name, secret_hash, user_id, grants, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &c.id,
                &c.name,
                &c.secret_hash.map(|h| h.to_vec()),
                &c.user_id.map(|id| id.to_string()),
                &Json(&c.grants),
                &millis(c.created_at),
            ],
        )
        .await
        .map_err(internal)?;
        tx.commit().await.map_err(internal)
    }

    async fn start_session(&self, session: TokenSession, refresh: Option<NewRefreshToken>) -> StoreResult<()> {
        let mut client = self.engine.get().await?;
        let tx = client.transaction().await.map_err(internal)?;
        tx.execute("DELETE FROM oauth_sessions WHERE expires_at < $1", &[&millis(session.created_at)])
            .await
            .map_err(internal)?;
        tx.execute(
            "INSERT INTO oauth_sessions (id, user_id, client_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
            &[
                &session.id.to_string(),
                &session.user_id.to_string(),
                &session.client_id,
                &millis(session.created_at),
                &millis(session.expires_at),
            ],
        )
        .await
        .map_err(internal)?;
        if let Some(token) = &refresh {
            insert_refresh_token(&*tx, session.id, token).await?;
        }
        tx.commit().await.map_err(internal)
    }

    async fn rotate_refresh_token(
        &self,
        presented: [u8; 32],
        successor: NewRefreshToken,
        now: OffsetDateTime,
    ) -> StoreResult<RefreshOutcome> {
        let mut client = self.engine.get().await?;
        let tx = client.transaction().await.map_err(internal)?;
        // The row lock makes a second request with the same token wait, then see it used.
        let found = tx
            .query_opt(
                "SELECT session_id, expires_at, used_at FROM refresh_tokens WHERE token_hash = $1 FOR UPDATE",
                &[&&presented[..]],
            )
            .await
            .map_err(internal)?;
        let Some(found) = found else { return Ok(RefreshOutcome::Invalid) };
        let session_id: String = found.try_get(0).map_err(internal)?;
        let expires_at: OffsetDateTime = found.try_get(1).map_err(internal)?;
        let used_at: Option<OffsetDateTime> = found.try_get(2).map_err(internal)?;
        if used_at.is_some() {
            tx.execute("DELETE FROM oauth_sessions WHERE id = $1", &[&session_id]).await.map_err(internal)?;
            tx.commit().await.map_err(internal)?;
            return Ok(RefreshOutcome::Reused);
        }
        if expires_at <= now {
            return Ok(RefreshOutcome::Invalid);
        }
        tx.execute("UPDATE refresh_tokens SET used_at = $2 WHERE token_hash = $1", &[&&presented[..], &millis(now)])
            .await
            .map_err(internal)?;
        let id = id_of(&found, 0)?;
        insert_refresh_token(&*tx, id, &successor).await?;
        tx.execute(
            "UPDATE oauth_sessions SET expires_at = $2 WHERE id = $1",
            &[&session_id, &millis(successor.expires_at)],
        )
        .await
        .map_err(internal)?;
        let row = tx
            .query_opt(
                "SELECT u.id, u.organisation, u.roles, s.client_id, s.created_at, s.expires_at \
                 FROM oauth_sessions s JOIN users u ON u.id = s.user_id WHERE s.id = $1",
                &[&session_id],
            )
            .await
            .map_err(internal)?;
        let outcome = match row {
            Some(row) => {
                let caller = caller_from_row(&row)?;
                let session = TokenSession {
                    id,
                    user_id: caller.user_id,
                    client_id: row.try_get(3).map_err(internal)?,
                    created_at: time_of(&row, 4)?,
                    expires_at: time_of(&row, 5)?,
                };
                RefreshOutcome::Rotated { session, caller }
            }
            None => RefreshOutcome::Invalid,
        };
        tx.commit().await.map_err(internal)?;
        Ok(outcome)
    }

    async fn session_caller(&self, session: ObjectId, user_id: ObjectId) -> StoreResult<Option<Caller>> {
        let client = self.engine.get().await?;
        let statement = client
            .prepare_cached(
                "SELECT u.id, u.organisation, u.roles FROM oauth_sessions s JOIN users u ON u.id = s.user_id \
                 WHERE s.id = $1 AND s.user_id = $2",
            )
            .await
            .map_err(internal)?;
        let row =
            client.query_opt(&statement, &[&session.to_string(), &user_id.to_string()]).await.map_err(internal)?;
        row.as_ref().map(caller_from_row).transpose()
    }

    async fn revoke_session(&self, session: ObjectId) -> StoreResult<bool> {
        let client = self.engine.get().await?;
        let deleted = client
            .execute("DELETE FROM oauth_sessions WHERE id = $1", &[&session.to_string()])
            .await
            .map_err(internal)?;
        Ok(deleted > 0)
    }

    async fn revoke_refresh_token(&self, presented: [u8; 32]) -> StoreResult<bool> {
        let client = self.engine.get().await?;
        let deleted = client
            .execute(
                "DELETE FROM oauth_sessions WHERE id = (SELECT session_id FROM refresh_tokens WHERE token_hash = $1)",
                &[&&presented[..]],
            )
            .await
            .map_err(internal)?;
        Ok(deleted > 0)
    }
}
