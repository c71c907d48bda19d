//! Analytics records: ingest with the pending updates that wait for them, updates that wait for
//! their record, and reads.

use std::collections::HashSet;

use async_trait::async_trait;
use parley_core::field::idx;
use parley_core::session::{Contribution, Source, Touched};
use parley_core::{Cursor, ObjectId, RECORD_FIELDS, Record, RecordFilter, RecordUpdate, SortKey, Value};
use time::OffsetDateTime;

use super::sessions::{self, Emptied, SessionKey};
use super::{Columns, count, text, truth};
use crate::error::StoreResult;
use crate::exec::{Engine, Executor, Kind, job};
use crate::model::{IngestCounts, UpdateOutcome, pending_update};
use crate::sql::{self, Dialect};
use crate::traits::RecordStore;

/// The first key of the PostgreSQL advisory locks that order pending updates against ingests.
/// The two-key form is a key space of its own, apart from the one-key lock of migrations.
const PENDING_LOCK_CLASS: i32 = 0x706e_6475;

/// The second key: one lock per project (a hash; two projects that share a lock only wait for
/// each other a little more). Ingests take it shared, so they never wait for one another; an
/// update about to become pending takes it exclusive, so that it waits for the ingests in flight
/// and the ingests that follow it see it. A lock per record would be finer, but a batch of 10 000
/// records would take 10 000 locks, more than PostgreSQL's lock table holds by default. SQLite
/// needs none of this: its one writer runs ingests and updates one after the other.
fn project_lock_key(project: ObjectId) -> i32 {
    // FNV-1a, 32 bits.
    let hash = project
        .to_string()
        .bytes()
        .fold(0x811c_9dc5_u32, |hash, byte| (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193));
    hash as i32
}

#[async_trait]
impl<E: Engine> RecordStore for E {
    async fn insert_records(&self, records: Vec<Record>, now: OffsetDateTime) -> StoreResult<IngestCounts> {
        if records.is_empty() {
            return Ok(IngestCounts::default());
        }
        self.write(job!(|x| match x.dialect() {
            Dialect::Sqlite => insert_row_by_row(x, &records, now).await,
            Dialect::Postgres => insert_batch(x, &records, now).await,
        }))
        .await
    }

    async fn update_records(
        &self,
        update: RecordUpdate,
        now: OffsetDateTime,
        defer_until: Option<OffsetDateTime>,
    ) -> StoreResult<UpdateOutcome> {
        self.write(job!(|x| {
            let statement = sql::update_records(x.dialect(), &update, now);
            // An update of what sessions show changes the sessions of the records it matches, in
            // its transaction; any other is one statement.
            let touched = Touched::by_record_fields(update.changes.iter().map(|(index, _)| *index));
            let matched = if touched.any() {
                x.begin().await?;
                let changed = updated_rows(x, &statement, update.project_id).await?;
                let matched = changed.len() as u64;
                sessions::update(x, changed, touched).await?;
                x.commit().await?;
                matched
            } else {
                x.execute(&statement.text, &statement.params).await?
            };
            let (Some(input), Some(until), 0) = (&update.input_id, defer_until, matched) else {
                return Ok(UpdateOutcome { matched, deferred: false });
            };
            x.begin().await?;
            if x.dialect() == Dialect::Postgres {
                // Under the project's exclusive lock, an ingest of the record is either committed
                // (and the update matches it now) or not yet past its lock (and will see the
                // pending update).
                let lock = "SELECT pg_advisory_xact_lock($1::int8::int4, $2::int8::int4)";
                let keys = [
                    Value::Integer(PENDING_LOCK_CLASS.into()),
                    Value::Integer(project_lock_key(update.project_id).into()),
                ];
                x.query(lock, &keys, &[]).await?;
                let changed = updated_rows(x, &statement, update.project_id).await?;
                let matched = changed.len() as u64;
                if matched > 0 {
                    sessions::update(x, changed, touched).await?;
                    x.commit().await?;
                    return Ok(UpdateOutcome { matched, deferred: false });
                }
            }
            let project = text(update.project_id);
            let exists = "SELECT EXISTS (SELECT 1 FROM records WHERE project_id = ?1 AND input_id = ?2)";
            let exists =
                truth(x.scalar(&x.dialect().text(exists), &[project.clone(), text(input)], Kind::Bool).await?)?;
            if !exists {
                let params = [
                    project,
                    text(input),
                    text(&update.contact_id),
                    update.session_id.as_ref().map_or(Value::Null, text),
                    Value::Json(serde_json::Value::Object(update.properties())),
                    Value::Time(now),
                    Value::Time(until),
                ];
                x.execute(insert_pending(x.dialect()), &params).await?;
            }
            x.commit().await?;
            Ok(UpdateOutcome { matched: 0, deferred: !exists })
        }))
        .await
    }

    async fn fetch_records(
        &self,
        filter: &RecordFilter,
        sort: &[SortKey],
        after: Option<&Cursor>,
        offset: u64,
        limit: u32,
    ) -> StoreResult<Vec<Record>> {
        let (filter, sort, after) = (filter.clone(), sort.to_vec(), after.cloned());
        self.read(job!(|x| {
            let statement = sql::select_records(x.dialect(), &filter, &sort, after.as_ref(), offset, limit);
            query_records(x, &statement).await
        }))
        .await
    }

    async fn count_records(&self, filter: &RecordFilter) -> StoreResult<u64> {
        let filter = filter.clone();
        self.read(job!(|x| {
            let statement = sql::count_records(x.dialect(), &filter);
            count(x.scalar(&statement.text, &statement.params, Kind::Integer).await?)
        }))
        .await
    }

    async fn get_record(&self, projects: &[ObjectId], id: ObjectId) -> StoreResult<Option<Record>> {
        let projects = projects.to_vec();
        self.read(job!(|x| {
            let statement = sql::select_record(x.dialect(), &projects, id);
            Ok(query_records(x, &statement).await?.into_iter().next())
        }))
        .await
    }
}

/// Runs an update and answers each record it changed, as its session's row after the update.
async fn updated_rows(
    x: &mut impl Executor,
    update: &sql::Statement,
    project: ObjectId,
) -> StoreResult<Vec<(SessionKey, Contribution)>> {
    let (columns, kinds) = sessions::contribution_columns(Source::Record);
    let sql = format!("{} RETURNING {}", update.text, columns.join(", "));
    let rows = x.query(&sql, &update.params, &kinds).await?;
    let rows = sessions::read_contributions(Source::Record, rows)?;
    Ok(rows.into_iter().map(|(session, row)| ((project, session), row)).collect())
}

/// Merges the records just inserted into their sessions, and derives again the sessions of the
/// records that pending updates changed as they arrived.
async fn bring_sessions_up_to_date(
    x: &mut impl Executor,
    added: Vec<&Record>,
    changed: Vec<SessionKey>,
) -> StoreResult<()> {
    let changed_set: HashSet<&SessionKey> = changed.iter().collect();
    let all: std::collections::BTreeSet<SessionKey> =
        added.iter().map(|r| session_of(r)).chain(changed.iter().cloned()).collect();
    sessions::lock(x, &all).await?;
    let mut rows = Vec::with_capacity(added.len());
    for record in added {
        let key = session_of(record);
        if changed_set.contains(&key) {
            continue;
        }
        let row = Contribution::of_row(Source::Record, record.values())
            .ok_or_else(|| crate::StoreError::internal("a stamped record does not read as a session's row"))?;
        rows.push((key, row));
    }
    sessions::add(x, rows).await?;
    sessions::refresh(x, changed, Emptied::Remove).await
}

fn session_of(record: &Record) -> SessionKey {
    (record.project_id(), text_of(record, idx::SESSION_ID))
}

fn text_of(record: &Record, index: usize) -> String {
    record.get(index).as_text().unwrap_or_default().to_owned()
}

async fn query_records(x: &mut impl Executor, statement: &sql::Statement) -> StoreResult<Vec<Record>> {
    let rows = x.query(&statement.text, &statement.params, sql::record_types()).await?;
    Ok(rows.into_iter().map(Record::from_values).collect())
}

/// The statement that keeps an update as pending, numbered after the input's others.
fn insert_pending(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Sqlite => {
            "INSERT INTO pending_updates \
             (project_id, input_id, seq, contact_id, session_id, properties, received_at, expires_at) \
             SELECT ?1, ?2, COALESCE(MAX(seq), 0) + 1, ?3, ?4, ?5, ?6, ?7 FROM pending_updates \
             WHERE project_id = ?1 AND input_id = ?2"
        }
        // The casts tell PostgreSQL the types a bare `SELECT` list cannot.
        Dialect::Postgres => {
            "INSERT INTO pending_updates \
             (project_id, input_id, seq, contact_id, session_id, properties, received_at, expires_at) \
             SELECT $1::text, $2::text, COALESCE(MAX(seq), 0) + 1, $3::text, $4::text, $5::json, $6::timestamptz, \
             $7::timestamptz FROM pending_updates WHERE project_id = $1 AND input_id = $2"
        }
    }
}

/// SQLite's ingest: one prepared insert per record, which costs no round trip, and the pending
/// updates of each record inserted applied at once. The writer is the only one: what it sees
/// here cannot change before it commits.
async fn insert_row_by_row(
    x: &mut impl Executor,
    records: &[Record],
    now: OffsetDateTime,
) -> StoreResult<IngestCounts> {
    let insert = sql::insert_record(Dialect::Sqlite);
    let any_pending = truth(x.scalar("SELECT EXISTS (SELECT 1 FROM pending_updates)", &[], Kind::Bool).await?)?;
    let mut counts = IngestCounts::default();
    let mut inserted = Vec::new();
    let mut updated = Vec::new();
    for record in records {
        if x.execute(&insert, record.values()).await? == 0 {
            counts.duplicates += 1;
            continue;
        }
        counts.inserted += 1;
        if any_pending {
            let input = text_of(record, idx::INPUT_ID);
            let (count, applied) = apply_pending_updates(x, &[(record.project_id(), input)], now).await?;
            if !applied.is_empty() {
                counts.pending_applied += count;
                updated.push(session_of(record));
                continue;
            }
        }
        inserted.push(record);
    }
    bring_sessions_up_to_date(x, inserted, updated).await?;
    Ok(counts)
}

/// PostgreSQL's ingest: the whole batch as one statement over 53 parallel arrays, one round trip,
/// under the shared locks of its projects; then the pending updates of the records inserted.
async fn insert_batch(x: &mut impl Executor, records: &[Record], now: OffsetDateTime) -> StoreResult<IngestCounts> {
    let columns: Vec<Vec<&Value>> =
        (0..RECORD_FIELDS.len()).map(|i| records.iter().map(|r| &r.values()[i]).collect()).collect();
    let mut locks: Vec<i32> = records.iter().map(|r| project_lock_key(r.project_id())).collect();
    locks.sort_unstable();
    locks.dedup();
    x.begin().await?;
    // In key order, so that batches of several projects cannot wait for each other in a cycle.
    for lock in locks {
        let keys = [Value::Integer(PENDING_LOCK_CLASS.into()), Value::Integer(lock.into())];
        x.query("SELECT pg_advisory_xact_lock_shared($1::int8::int4, $2::int8::int4)", &keys, &[]).await?;
    }
    let inserted = x.query_columns(sql::insert_batch_postgres(), &columns, &[Kind::Text, Kind::Text]).await?;
    let keys = inserted
        .into_iter()
        .map(|row| {
            let mut columns = Columns::new(row);
            Ok((columns.id()?, columns.text()?))
        })
        .collect::<StoreResult<Vec<_>>>()?;
    let (pending_applied, applied) =
        if keys.is_empty() { (0, Vec::new()) } else { apply_pending_updates(x, &keys, now).await? };
    let applied: HashSet<(ObjectId, String)> = applied.into_iter().collect();
    let key_of = |r: &Record| (r.project_id(), text_of(r, idx::INPUT_ID));
    // A key sent twice in one batch was inserted once, from its first row.
    let mut fresh: HashSet<(ObjectId, String)> = keys.iter().cloned().collect();
    let (changed, added): (Vec<&Record>, Vec<&Record>) =
        records.iter().filter(|r| fresh.remove(&key_of(r))).partition(|r| applied.contains(&key_of(r)));
    bring_sessions_up_to_date(x, added, changed.into_iter().map(session_of).collect()).await?;
    x.commit().await?;
    let inserted = keys.len() as u64;
    Ok(IngestCounts { inserted, duplicates: records.len() as u64 - inserted, pending_applied, updated: 0 })
}

/// Applies the unexpired pending updates of the records just inserted (by project and input),
/// oldest first, and removes every pending update of their inputs. Returns how many updates
/// changed a record, and the inputs whose record one changed. SQLite looks each input up, which costs no round trip; PostgreSQL looks the whole
/// batch up in one statement.
async fn apply_pending_updates(
    x: &mut impl Executor,
    inserted: &[(ObjectId, String)],
    now: OffsetDateTime,
) -> StoreResult<(u64, Vec<(ObjectId, String)>)> {
    const KINDS: [Kind; 6] = [Kind::Text, Kind::Text, Kind::Text, Kind::Text, Kind::Json, Kind::Time];
    let keys: (Vec<Value>, Vec<Value>) = inserted.iter().map(|(project, input)| (text(project), text(input))).unzip();
    let waiting = match x.dialect() {
        Dialect::Sqlite => {
            let sql = "SELECT project_id, input_id, contact_id, session_id, properties, expires_at \
                       FROM pending_updates WHERE project_id = ?1 AND input_id = ?2 ORDER BY seq";
            let mut rows = Vec::new();
            for (project, input) in keys.0.iter().zip(&keys.1) {
                rows.extend(x.query(sql, &[project.clone(), input.clone()], &KINDS).await?);
            }
            rows
        }
        Dialect::Postgres => {
            let sql = "SELECT p.project_id, p.input_id, p.contact_id, p.session_id, p.properties, p.expires_at \
                       FROM pending_updates p JOIN unnest($1::text[], $2::text[]) AS r (project_id, input_id) \
                       ON p.project_id = r.project_id AND p.input_id = r.input_id \
                       ORDER BY p.project_id, p.input_id, p.seq";
            x.query_columns(sql, &[keys.0.iter().collect(), keys.1.iter().collect()], &KINDS).await?
        }
    };
    if waiting.is_empty() {
        return Ok((0, Vec::new()));
    }
    let mut count = 0;
    let mut applied = Vec::new();
    let mut done: (Vec<Value>, Vec<Value>) = (Vec::new(), Vec::new());
    for row in waiting {
        let mut columns = Columns::new(row);
        let (project, input) = (columns.id()?, columns.text()?);
        let (contact, session, properties) = (columns.text()?, columns.opt_text()?, columns.json()?);
        if columns.time()? > now {
            let update = pending_update(project, contact, session, input.clone(), properties)?;
            let statement = sql::update_records(x.dialect(), &update, now);
            let changed = x.execute(&statement.text, &statement.params).await?;
            if changed > 0 {
                count += changed;
                applied.push((project, input.clone()));
            }
        }
        done.0.push(text(project));
        done.1.push(Value::Text(input));
    }
    match x.dialect() {
        Dialect::Sqlite => {
            let sql = "DELETE FROM pending_updates WHERE project_id = ?1 AND input_id = ?2";
            for (project, input) in done.0.into_iter().zip(done.1) {
                x.execute(sql, &[project, input]).await?;
            }
        }
        Dialect::Postgres => {
            let sql = "DELETE FROM pending_updates p USING unnest($1::text[], $2::text[]) AS r (project_id, input_id) \
                       WHERE p.project_id = r.project_id AND p.input_id = r.input_id";
            x.query_columns(sql, &[done.0.iter().collect(), done.1.iter().collect()], &[]).await?;
        }
    }
    Ok((count, applied))
}
