//! Organisations, users and API keys.

use async_trait::async_trait;
use parley_core::value::{from_unix_millis, unix_millis};
use parley_core::{Caller, ObjectId, OrgRole, Value};

use super::{Columns, count, json, opt_text, text, truth};
use crate::error::{Constraint, StoreError, StoreResult};
use crate::exec::{Engine, Executor, Kind, job};
use crate::model::{ApiKeyInfo, Bootstrap, NewApiKey, NewUser, Organisation, User, UserDeletion, UserKind};
use crate::postgres::LOCK_KEY;
use crate::sql::Dialect;
use crate::traits::IdentityStore;

const USER_COLUMNS: &str = "u.id, u.organisation, u.email, u.name, u.roles, u.kind, u.created_at";
const USER_KINDS: [Kind; 7] = [Kind::Text, Kind::Text, Kind::Text, Kind::Text, Kind::Json, Kind::Text, Kind::Time];

/// The columns [`caller`] reads: the user's id, organisation and roles.
pub(super) const CALLER_COLUMNS: &str = "u.id, u.organisation, u.roles";
pub(super) const CALLER_KINDS: [Kind; 3] = [Kind::Text, Kind::Text, Kind::Json];

fn user(columns: &mut Columns) -> StoreResult<User> {
    Ok(User {
        id: columns.id()?,
        organisation: columns.id()?,
        email: columns.text()?,
        name: columns.text()?,
        roles: columns.json()?,
        kind: UserKind::parse(&columns.text()?),
        created_at: columns.time()?,
    })
}

pub(super) fn caller(columns: &mut Columns) -> StoreResult<Caller> {
    Ok(Caller { user_id: columns.id()?, organisation: columns.id()?, org_roles: columns.json()? })
}

fn organisation(columns: &mut Columns) -> StoreResult<Organisation> {
    Ok(Organisation { id: columns.id()?, name: columns.text()?, created_at: columns.time()? })
}

async fn insert_organisation(x: &mut impl Executor, organisation: &Organisation) -> StoreResult<()> {
    let sql = "INSERT INTO organisations (id, name, created_at) VALUES (?1, ?2, ?3)";
    let params = [text(organisation.id), text(&organisation.name), Value::Time(organisation.created_at)];
    x.execute(&x.dialect().text(sql), &params).await.map(drop)
}

/// Inserts a user. The email is checked first so that a second user with it is refused as
/// [`Constraint::UserEmail`] on either engine; on PostgreSQL two writers may still pass the check
/// together, and the loser's unique violation names the same constraint.
pub(super) async fn insert_user(x: &mut impl Executor, new: &NewUser) -> StoreResult<()> {
    let u = &new.user;
    let sql = "SELECT EXISTS (SELECT 1 FROM users WHERE organisation = ?1 AND email = ?2)";
    let taken = truth(x.scalar(&x.dialect().text(sql), &[text(u.organisation), text(&u.email)], Kind::Bool).await?)?;
    if taken {
        return Err(StoreError::Conflict(Constraint::UserEmail));
    }
    let sql = "INSERT INTO users (id, organisation, email, name, password_hash, roles, kind, created_at) \
               VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
    let params = [
        text(u.id),
        text(u.organisation),
        text(&u.email),
        text(&u.name),
        opt_text(new.password_hash.as_ref()),
        json(&u.roles)?,
        text(u.kind.as_str()),
        Value::Time(u.created_at),
    ];
    x.execute(&x.dialect().text(sql), &params).await.map(drop)
}

async fn insert_key(x: &mut impl Executor, key: &NewApiKey) -> StoreResult<()> {
    let sql = "INSERT INTO api_keys (id, user_id, name, secret_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5)";
    let params = [
        text(key.id),
        text(key.user_id),
        text(&key.name),
        Value::Bytes(key.secret_hash.to_vec()),
        Value::Time(key.created_at),
    ];
    x.execute(&x.dialect().text(sql), &params).await.map(drop)
}

/// Whether `id`, holding `roles`, is the only admin among `users`.
fn is_last_admin(users: &[(ObjectId, Vec<OrgRole>)], id: ObjectId, roles: &[OrgRole]) -> bool {
    roles.contains(&OrgRole::Admin)
        && !users.iter().any(|(other, roles)| *other != id && roles.contains(&OrgRole::Admin))
}

#[async_trait]
impl<E: Engine> IdentityStore for E {
    async fn bootstrap(&self, b: Bootstrap) -> StoreResult<bool> {
        self.write(job!(|x| {
            x.begin().await?;
            match x.dialect() {
                // The single writer runs one bootstrap at a time.
                Dialect::Sqlite => {}
                // Nodes that start together on one database take turns, so that only one of them
                // finds no organisation.
                Dialect::Postgres => {
                    x.execute("SELECT pg_advisory_xact_lock($1)", &[Value::Integer(LOCK_KEY)]).await?;
                }
            }
            if truth(x.scalar("SELECT EXISTS (SELECT 1 FROM organisations)", &[], Kind::Bool).await?)? {
                // Nothing was written; the engine ends the transaction.
                return Ok(false);
            }
            let created_at = b.api_key.created_at;
            insert_organisation(x, &Organisation { id: b.organisation_id, name: b.organisation_name, created_at })
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
            insert_user(x, &NewUser { user: admin, password_hash: b.admin_password_hash }).await?;
            insert_key(x, &b.api_key).await?;
            x.commit().await?;
            Ok(true)
        }))
        .await
    }

    async fn caller_by_key_hash(&self, secret_hash: [u8; 32]) -> StoreResult<Option<Caller>> {
        self.read(job!(|x| {
            let sql = format!(
                "SELECT {CALLER_COLUMNS} FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.secret_hash = ?1"
            );
            let params = [Value::Bytes(secret_hash.to_vec())];
            let row = x.query_opt(&x.dialect().text(&sql), &params, &CALLER_KINDS).await?;
            row.map(|row| caller(&mut Columns::new(row))).transpose()
        }))
        .await
    }

    async fn create_api_key(&self, key: NewApiKey) -> StoreResult<ApiKeyInfo> {
        self.write(job!(|x| {
            insert_key(x, &key).await?;
            // The time as stored, so that the key reads back equal to what is answered here.
            let created_at = from_unix_millis(unix_millis(key.created_at)).unwrap_or(key.created_at);
            Ok(ApiKeyInfo { id: key.id, name: key.name, created_at })
        }))
        .await
    }

    async fn list_api_keys(&self, user_id: ObjectId) -> StoreResult<Vec<ApiKeyInfo>> {
        self.read(job!(|x| {
            let sql = "SELECT id, name, created_at FROM api_keys WHERE user_id = ?1 ORDER BY created_at, id";
            let rows = x.query(&x.dialect().text(sql), &[text(user_id)], &[Kind::Text, Kind::Text, Kind::Time]).await?;
            rows.into_iter()
                .map(|row| {
                    let mut columns = Columns::new(row);
                    Ok(ApiKeyInfo { id: columns.id()?, name: columns.text()?, created_at: columns.time()? })
                })
                .collect()
        }))
        .await
    }

    async fn revoke_api_key(&self, user_id: ObjectId, key_id: ObjectId) -> StoreResult<bool> {
        self.write(job!(|x| {
            let sql = "DELETE FROM api_keys WHERE id = ?1 AND user_id = ?2";
            Ok(x.execute(&x.dialect().text(sql), &[text(key_id), text(user_id)]).await? > 0)
        }))
        .await
    }

    async fn api_key_owner(&self, key_id: ObjectId) -> StoreResult<Option<ObjectId>> {
        self.read(job!(|x| {
            let sql = "SELECT user_id FROM api_keys WHERE id = ?1";
            let row = x.query_opt(&x.dialect().text(sql), &[text(key_id)], &[Kind::Text]).await?;
            row.map(|row| Columns::new(row).id()).transpose()
        }))
        .await
    }

    async fn create_organisation(&self, organisation: Organisation, admin: NewUser, key: NewApiKey) -> StoreResult<()> {
        self.write(job!(|x| {
            x.begin().await?;
            insert_organisation(x, &organisation).await?;
            insert_user(x, &admin).await?;
            insert_key(x, &key).await?;
            x.commit().await
        }))
        .await
    }

    async fn list_organisations(&self) -> StoreResult<Vec<Organisation>> {
        self.read(job!(|x| {
            let sql = "SELECT id, name, created_at FROM organisations ORDER BY created_at, id";
            let rows = x.query(sql, &[], &[Kind::Text, Kind::Text, Kind::Time]).await?;
            rows.into_iter().map(|row| organisation(&mut Columns::new(row))).collect()
        }))
        .await
    }

    async fn create_user(&self, user: NewUser) -> StoreResult<()> {
        self.write(job!(|x| insert_user(x, &user).await)).await
    }

    async fn user(&self, organisation: ObjectId, id: ObjectId) -> StoreResult<Option<User>> {
        self.read(job!(|x| {
            let sql = format!("SELECT {USER_COLUMNS} FROM users u WHERE u.id = ?1 AND u.organisation = ?2");
            let row = x.query_opt(&x.dialect().text(&sql), &[text(id), text(organisation)], &USER_KINDS).await?;
            row.map(|row| user(&mut Columns::new(row))).transpose()
        }))
        .await
    }

    async fn list_users(&self, organisation: ObjectId, skip: u64, limit: u32) -> StoreResult<(Vec<User>, u64)> {
        self.read(job!(|x| {
            let sql = format!(
                "SELECT {USER_COLUMNS} FROM users u WHERE u.organisation = ?1 \
                 ORDER BY u.created_at, u.id LIMIT ?2 OFFSET ?3"
            );
            let params = [
                text(organisation),
                Value::Integer(i64::from(limit)),
                Value::Integer(skip.min(i64::MAX as u64) as i64),
            ];
            let rows = x.query(&x.dialect().text(&sql), &params, &USER_KINDS).await?;
            let users = rows.into_iter().map(|row| user(&mut Columns::new(row))).collect::<StoreResult<Vec<_>>>()?;
            let total = "SELECT COUNT(*) FROM users WHERE organisation = ?1";
            let total = count(x.scalar(&x.dialect().text(total), &params[..1], Kind::Integer).await?)?;
            Ok((users, total))
        }))
        .await
    }

    async fn people_by_email(&self, email: &str) -> StoreResult<Vec<(User, Option<String>)>> {
        let email = email.to_owned();
        self.read(job!(|x| {
            let sql = format!(
                "SELECT {USER_COLUMNS}, u.password_hash FROM users u WHERE u.email = ?1 AND u.kind = 'person' \
                 ORDER BY u.created_at, u.id"
            );
            let kinds = [&USER_KINDS[..], &[Kind::Text]].concat();
            let rows = x.query(&x.dialect().text(&sql), &[text(&email)], &kinds).await?;
            rows.into_iter()
                .map(|row| {
                    let mut columns = Columns::new(row);
                    Ok((user(&mut columns)?, columns.opt_text()?))
                })
                .collect()
        }))
        .await
    }

    async fn set_password(&self, organisation: ObjectId, id: ObjectId, password_hash: String) -> StoreResult<bool> {
        self.write(job!(|x| {
            x.begin().await?;
            let sql = "UPDATE users SET password_hash = ?3 WHERE organisation = ?1 AND id = ?2 AND kind = 'person'";
            let params = [text(organisation), text(id), Value::Text(password_hash.clone())];
            let changed = x.execute(&x.dialect().text(sql), &params).await? > 0;
            if changed {
                x.execute(&x.dialect().text("DELETE FROM oauth_sessions WHERE user_id = ?1"), &[text(id)]).await?;
            }
            x.commit().await?;
            Ok(changed)
        }))
        .await
    }

    async fn delete_user(&self, organisation: ObjectId, id: ObjectId) -> StoreResult<UserDeletion> {
        self.write(job!(|x| {
            x.begin().await?;
            match x.dialect() {
                // The single writer deletes one user at a time.
                Dialect::Sqlite => {}
                // Serialises deletions within the organisation, so that two admins deleting each
                // other cannot both pass the last-admin check.
                Dialect::Postgres => {
                    x.execute("SELECT 1 FROM organisations WHERE id = $1 FOR UPDATE", &[text(organisation)]).await?;
                }
            }
            let sql = "SELECT id, roles FROM users WHERE organisation = ?1";
            let rows = x.query(&x.dialect().text(sql), &[text(organisation)], &[Kind::Text, Kind::Json]).await?;
            let users = rows
                .into_iter()
                .map(|row| {
                    let mut columns = Columns::new(row);
                    Ok((columns.id()?, columns.json::<Vec<OrgRole>>()?))
                })
                .collect::<StoreResult<Vec<_>>>()?;
            let outcome = match users.iter().find(|(user, _)| *user == id) {
                None => UserDeletion::NotFound,
                Some((_, roles)) if is_last_admin(&users, id, roles) => UserDeletion::LastAdmin,
                Some(_) => {
                    x.execute(&x.dialect().text("DELETE FROM users WHERE id = ?1"), &[text(id)]).await?;
                    UserDeletion::Deleted
                }
            };
            x.commit().await?;
            Ok(outcome)
        }))
        .await
    }
}
