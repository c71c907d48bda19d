//! OAuth2: clients, the token signing key, token sessions and refresh tokens.

use async_trait::async_trait;
use parley_core::{Caller, ObjectId, Value};
use time::OffsetDateTime;

use super::identity::{CALLER_COLUMNS, CALLER_KINDS, caller, insert_user};
use super::{Columns, json, opt_text, text};
use crate::error::{StoreError, StoreResult};
use crate::exec::{Engine, Executor, Kind, job};
use crate::model::{NewRefreshToken, NewUser, OAuthClient, RefreshOutcome, TokenSession};
use crate::sql::Dialect;
use crate::traits::OAuthStore;

async fn insert_refresh_token(x: &mut impl Executor, session: ObjectId, token: &NewRefreshToken) -> StoreResult<()> {
    let sql = "INSERT INTO refresh_tokens (token_hash, session_id, expires_at, used_at) VALUES (?1, ?2, ?3, NULL)";
    let params = [Value::Bytes(token.hash.to_vec()), text(session), Value::Time(token.expires_at)];
    x.execute(&x.dialect().text(sql), &params).await.map(drop)
}

#[async_trait]
impl<E: Engine> OAuthStore for E {
    async fn signing_key(&self, candidate: Vec<u8>) -> StoreResult<Vec<u8>> {
        self.write(job!(|x| {
            let sql = "INSERT INTO signing_keys (id, secret, created_at) VALUES ('access-tokens', ?1, ?2) \
                       ON CONFLICT (id) DO NOTHING";
            x.execute(&x.dialect().text(sql), &[Value::Bytes(candidate), Value::Time(parley_core::value::now())])
                .await?;
            let sql = "SELECT secret FROM signing_keys WHERE id = 'access-tokens'";
            Columns::new(vec![x.scalar(sql, &[], Kind::Bytes).await?]).bytes()
        }))
        .await
    }

    async fn oauth_client(&self, id: &str) -> StoreResult<Option<OAuthClient>> {
        let id = id.to_owned();
        self.read(job!(|x| {
            let sql = "SELECT id, name, secret_hash, user_id, grants, created_at FROM oauth_clients WHERE id = ?1";
            let kinds = [Kind::Text, Kind::Text, Kind::Bytes, Kind::Text, Kind::Json, Kind::Time];
            let Some(row) = x.query_opt(&x.dialect().text(sql), &[text(&id)], &kinds).await? else {
                return Ok(None);
            };
            let mut columns = Columns::new(row);
            Ok(Some(OAuthClient {
                id: columns.text()?,
                name: columns.text()?,
                secret_hash: columns.opt_bytes()?.and_then(|hash| hash.try_into().ok()),
                user_id: columns
                    .opt_text()?
                    .map(|user| {
                        ObjectId::parse(&user).map_err(|e| StoreError::internal(format!("stored id '{user}': {e}")))
                    })
                    .transpose()?,
                grants: columns.json()?,
                created_at: columns.time()?,
            }))
        }))
        .await
    }

    async fn create_oauth_client(&self, client: OAuthClient, service_user: NewUser) -> StoreResult<()> {
        self.write(job!(|x| {
            x.begin().await?;
            insert_user(x, &service_user).await?;
            let sql = "INSERT INTO oauth_clients (id, name, secret_hash, user_id, grants, created_at) \
                       VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
            let params = [
                text(&client.id),
                text(&client.name),
                client.secret_hash.map_or(Value::Null, |hash| Value::Bytes(hash.to_vec())),
                opt_text(client.user_id),
                json(&client.grants)?,
                Value::Time(client.created_at),
            ];
            x.execute(&x.dialect().text(sql), &params).await?;
            x.commit().await
        }))
        .await
    }

    async fn start_session(&self, session: TokenSession, refresh: Option<NewRefreshToken>) -> StoreResult<()> {
        self.write(job!(|x| {
            x.begin().await?;
            let sql = "DELETE FROM oauth_sessions WHERE expires_at < ?1";
            x.execute(&x.dialect().text(sql), &[Value::Time(session.created_at)]).await?;
            let sql = "INSERT INTO oauth_sessions (id, user_id, client_id, created_at, expires_at) \
                       VALUES (?1, ?2, ?3, ?4, ?5)";
            let params = [
                text(session.id),
                text(session.user_id),
                text(&session.client_id),
                Value::Time(session.created_at),
                Value::Time(session.expires_at),
            ];
            x.execute(&x.dialect().text(sql), &params).await?;
            if let Some(token) = &refresh {
                insert_refresh_token(x, session.id, token).await?;
            }
            x.commit().await
        }))
        .await
    }

    async fn rotate_refresh_token(
        &self,
        presented: [u8; 32],
        successor: NewRefreshToken,
        now: OffsetDateTime,
    ) -> StoreResult<RefreshOutcome> {
        self.write(job!(|x| {
            x.begin().await?;
            let lock = match x.dialect() {
                // The single writer rotates one token at a time.
                Dialect::Sqlite => "",
                // The row lock makes a second request with the same token wait, then see it used.
                Dialect::Postgres => " FOR UPDATE",
            };
            let sql = format!("SELECT session_id, expires_at, used_at FROM refresh_tokens WHERE token_hash = ?1{lock}");
            let presented = [Value::Bytes(presented.to_vec())];
            let found = x.query_opt(&x.dialect().text(&sql), &presented, &[Kind::Text, Kind::Time, Kind::Time]).await?;
            // Returning before the commit writes nothing: the engine rolls the transaction back.
            let Some(found) = found else { return Ok(RefreshOutcome::Invalid) };
            let mut columns = Columns::new(found);
            let (session_id, expires_at, used_at) = (columns.id()?, columns.time()?, columns.opt_time()?);
            if used_at.is_some() {
                let sql = "DELETE FROM oauth_sessions WHERE id = ?1";
                x.execute(&x.dialect().text(sql), &[text(session_id)]).await?;
                x.commit().await?;
                return Ok(RefreshOutcome::Reused);
            }
            if expires_at <= now {
                return Ok(RefreshOutcome::Invalid);
            }
            let sql = "UPDATE refresh_tokens SET used_at = ?2 WHERE token_hash = ?1";
            x.execute(&x.dialect().text(sql), &[presented[0].clone(), Value::Time(now)]).await?;
            insert_refresh_token(x, session_id, &successor).await?;
            let sql = "UPDATE oauth_sessions SET expires_at = ?2 WHERE id = ?1";
            x.execute(&x.dialect().text(sql), &[text(session_id), Value::Time(successor.expires_at)]).await?;
            let sql = format!(
                "SELECT {CALLER_COLUMNS}, s.client_id, s.created_at, s.expires_at \
                 FROM oauth_sessions s JOIN users u ON u.id = s.user_id WHERE s.id = ?1"
            );
            let kinds = [&CALLER_KINDS[..], &[Kind::Text, Kind::Time, Kind::Time]].concat();
            let row = x.query_opt(&x.dialect().text(&sql), &[text(session_id)], &kinds).await?;
            let outcome = match row {
                Some(row) => {
                    let mut columns = Columns::new(row);
                    let caller = caller(&mut columns)?;
                    let session = TokenSession {
                        id: session_id,
                        user_id: caller.user_id,
                        client_id: columns.text()?,
                        created_at: columns.time()?,
                        expires_at: columns.time()?,
                    };
                    RefreshOutcome::Rotated { session, caller }
                }
                None => RefreshOutcome::Invalid,
            };
            x.commit().await?;
            Ok(outcome)
        }))
        .await
    }

    async fn session_caller(&self, session: ObjectId, user_id: ObjectId) -> StoreResult<Option<Caller>> {
        self.read(job!(|x| {
            let sql = format!(
                "SELECT {CALLER_COLUMNS} FROM oauth_sessions s JOIN users u ON u.id = s.user_id \
                 WHERE s.id = ?1 AND s.user_id = ?2"
            );
            let row = x.query_opt(&x.dialect().text(&sql), &[text(session), text(user_id)], &CALLER_KINDS).await?;
            row.map(|row| caller(&mut Columns::new(row))).transpose()
        }))
        .await
    }

    async fn revoke_session(&self, session: ObjectId) -> StoreResult<bool> {
        self.write(job!(|x| {
            let sql = "DELETE FROM oauth_sessions WHERE id = ?1";
            Ok(x.execute(&x.dialect().text(sql), &[text(session)]).await? > 0)
        }))
        .await
    }

    async fn revoke_refresh_token(&self, presented: [u8; 32]) -> StoreResult<bool> {
        self.write(job!(|x| {
            let sql = "DELETE FROM oauth_sessions WHERE id = \
                       (SELECT session_id FROM refresh_tokens WHERE token_hash = ?1)";
            Ok(x.execute(&x.dialect().text(sql), &[Value::Bytes(presented.to_vec())]).await? > 0)
        }))
        .await
    }
}
