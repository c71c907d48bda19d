//! Conversation messages: ingest, the conversations index, transcripts, and deleting one. Every
//! write ends by bringing the sessions it touched up to date ([`sessions::refresh`]).

use std::collections::BTreeMap;

use async_trait::async_trait;
use parley_core::conversations::{ConversationCursor, ConversationSummary};
use parley_core::goal_event::GoalEvent;
use parley_core::message::idx as message_idx;
use parley_core::session::{Contribution, Source};
use parley_core::{ConversationQuery, EscalationWrite, ExecutedStep, MESSAGE_FIELDS, Message, ObjectId, Value};

use super::sessions::{self, Emptied};
use super::{Columns, RowTable, count, text};
use crate::error::{StoreError, StoreResult};
use crate::exec::{Engine, Executor, Kind, job};
use crate::model::IngestCounts;
use crate::sql::{self, Dialect, Statement};
use crate::traits::ConversationStore;

fn message_kinds() -> &'static [Kind] {
    static KINDS: std::sync::LazyLock<Vec<Kind>> =
        std::sync::LazyLock::new(|| MESSAGE_FIELDS.iter().map(|f| Kind::of(f.ty)).collect());
    &KINDS
}

/// Adds the words of messages just inserted to SQLite's full-text index, one statement per project
/// (migration 11 says why not a trigger). PostgreSQL's index follows the table by itself.
async fn index_words(x: &mut impl Executor, inserted: &[&Message]) -> StoreResult<()> {
    if x.dialect() != Dialect::Sqlite {
        return Ok(());
    }
    let mut by_project: BTreeMap<ObjectId, Vec<String>> = BTreeMap::new();
    for message in inserted {
        if message.get(message_idx::INPUT_TEXT) != &Value::Null {
            by_project.entry(message.project_id()).or_default().push(message_id_of(message));
        }
    }
    let sql = "INSERT INTO messages_search (rowid, input_text) SELECT search_key, input_text FROM messages \
               WHERE project_id = ?1 AND message_id IN (SELECT value FROM json_each(?2)) AND input_text IS NOT NULL";
    for (project, ids) in by_project {
        x.execute(sql, &[text(project), Value::Json(serde_json::Value::from(ids))]).await?;
    }
    Ok(())
}

fn message_id_of(message: &Message) -> String {
    message.get(message_idx::MESSAGE_ID).as_text().unwrap_or_default().to_owned()
}

/// Messages, one row per `(projectId, messageId)`.
const MESSAGES: RowTable = RowTable {
    table: "messages",
    fields: MESSAGE_FIELDS,
    copies: &[],
    key_column: "message_id",
    key_field: message_idx::MESSAGE_ID,
    project_field: message_idx::PROJECT_ID,
};

#[async_trait]
impl<E: Engine> ConversationStore for E {
    async fn insert_messages(&self, messages: Vec<Message>) -> StoreResult<IngestCounts> {
        if messages.is_empty() {
            return Ok(IngestCounts::default());
        }
        self.write(job!(|x| {
            x.begin().await?;
            let rows: Vec<&[Value]> = messages.iter().map(Message::values).collect();
            let inserted: Vec<&Message> =
                MESSAGES.insert_new(x, &rows).await?.into_iter().map(|i| &messages[i]).collect();
            index_words(x, &inserted).await?;
            let count = inserted.len() as u64;
            let rows = inserted
                .into_iter()
                .map(|m| {
                    let row = Contribution::of_row(Source::Message, m.values())
                        .ok_or_else(|| StoreError::internal("a stamped message does not read as a session's row"))?;
                    Ok(((m.project_id(), m.session_id().to_owned()), row))
                })
                .collect::<StoreResult<Vec<_>>>()?;
            sessions::add(x, rows).await?;
            x.commit().await?;
            Ok(IngestCounts {
                inserted: count,
                duplicates: messages.len() as u64 - count,
                pending_applied: 0,
                updated: 0,
            })
        }))
        .await
    }

    async fn insert_steps(&self, steps: Vec<ExecutedStep>) -> StoreResult<IngestCounts> {
        super::steps::insert(self, steps).await
    }

    async fn insert_escalations(&self, writes: Vec<EscalationWrite>) -> StoreResult<IngestCounts> {
        super::escalations::insert(self, writes).await
    }

    async fn insert_goal_events(&self, events: Vec<GoalEvent>) -> StoreResult<IngestCounts> {
        super::goal_events::insert(self, events).await
    }

    async fn fetch_conversations(
        &self,
        query: &ConversationQuery,
        after: Option<&ConversationCursor>,
        backwards: bool,
        offset: u64,
        limit: u32,
    ) -> StoreResult<Vec<ConversationSummary>> {
        let (query, after) = (query.clone(), after.cloned());
        self.read(job!(|x| {
            let mut s = Statement::new(x.dialect());
            s.push(
                "SELECT id, session_id, contact_id, project_id, project_name, channel, flow_name, endpoint_name, \
                 messages_count, first_message_at, last_message_at FROM sessions",
            );
            push_index_filter(&mut s, &query);
            if let Some(cursor) = &after {
                let at = Value::Time(cursor.last_message_at);
                let session = Value::Text(cursor.session_id.clone());
                // Newest first: "after" is older; read backwards, it is newer.
                let op = if backwards { ">" } else { "<" };
                s.push(" AND (last_message_at ").push(op).push(" ").bind(at.clone());
                s.push(" OR (last_message_at = ").bind(at).push(" AND session_id ").push(op).push(" ");
                s.bind(session).push("))");
            }
            let direction = if backwards { "ASC" } else { "DESC" };
            s.push(&format!(" ORDER BY last_message_at {direction}, session_id {direction} LIMIT "));
            s.bind(Value::Integer(i64::from(limit)));
            if offset > 0 {
                s.push(" OFFSET ").bind(Value::Integer(offset.min(i64::MAX as u64) as i64));
            }
            const KINDS: [Kind; 11] = [
                Kind::Text,
                Kind::Text,
                Kind::Text,
                Kind::Text,
                Kind::Text,
                Kind::Text,
                Kind::Text,
                Kind::Text,
                Kind::Integer,
                Kind::Time,
                Kind::Time,
            ];
            let rows = x.query(&s.text, &s.params, &KINDS).await?;
            let mut items = rows
                .into_iter()
                .map(|row| {
                    let mut c = Columns::new(row);
                    Ok(ConversationSummary {
                        id: c.text()?,
                        session_id: c.text()?,
                        contact_id: c.text()?,
                        project_id: c.text()?,
                        project_name: c.opt_text()?,
                        channel: c.opt_text()?,
                        flow_name: c.opt_text()?,
                        endpoint_name: c.opt_text()?,
                        messages: c.integer()?,
                        start_time: c.time()?,
                        end_time: c.time()?,
                        ratings: Vec::new(),
                        rating_comments: Vec::new(),
                    })
                })
                .collect::<StoreResult<Vec<_>>>()?;
            add_ratings(x, query.project_id, &mut items).await?;
            Ok(items)
        }))
        .await
    }

    async fn count_conversations(&self, query: &ConversationQuery) -> StoreResult<u64> {
        let query = query.clone();
        self.read(job!(|x| {
            let mut s = Statement::new(x.dialect());
            s.push("SELECT COUNT(*) FROM sessions");
            push_index_filter(&mut s, &query);
            count(x.scalar(&s.text, &s.params, Kind::Integer).await?)
        }))
        .await
    }

    async fn transcript(&self, project: ObjectId, session: &str) -> StoreResult<Vec<Message>> {
        let session = session.to_owned();
        self.read(job!(|x| {
            let sql = format!(
                "SELECT {} FROM messages WHERE project_id = ?1 AND session_id = ?2 ORDER BY timestamp, id",
                sql::columns_of(MESSAGE_FIELDS)
            );
            let rows = x.query(&x.dialect().text(&sql), &[text(project), text(&session)], message_kinds()).await?;
            Ok(rows.into_iter().map(Message::from_values).collect())
        }))
        .await
    }

    async fn delete_transcript(&self, project: ObjectId, session: &str) -> StoreResult<u64> {
        let session = session.to_owned();
        self.write(job!(|x| {
            x.begin().await?;
            let sql = "DELETE FROM messages WHERE project_id = ?1 AND session_id = ?2";
            let deleted = x.execute(&x.dialect().text(sql), &[text(project), text(&session)]).await?;
            if deleted > 0 {
                sessions::refresh(x, vec![(project, session)], Emptied::KeepWithoutMessages).await?;
            }
            x.commit().await?;
            Ok(deleted)
        }))
        .await
    }
}

/// ` WHERE …`: the sessions of the index that the query's filters select.
fn push_index_filter(s: &mut Statement, query: &ConversationQuery) {
    let project = Value::Text(query.project_id.to_string());
    s.push(" WHERE project_id = ").bind(project.clone()).push(" AND messages_count > 0");
    if !query.contact_ids.is_empty() {
        s.push(" AND ");
        sql::push_in_list(s, "contact_id", &query.contact_ids);
    }
    if let Some(from) = query.from {
        s.push(" AND last_message_at >= ").bind(Value::Time(from));
    }
    if let Some(to) = query.to {
        s.push(" AND first_message_at < ").bind(Value::Time(to));
    }
    if let Some(channel) = &query.channel {
        s.push(" AND channel = ").bind(Value::Text(channel.clone()));
    }
    if !query.search.is_empty() {
        match s.dialect() {
            Dialect::Sqlite => {
                // Every word as a quoted phrase: FTS5 reads none of them as an operator.
                let words: Vec<String> = query.search.iter().map(|w| format!("\"{w}\"")).collect();
                s.push(
                    " AND session_id IN (SELECT m.session_id FROM messages_search f \
                     JOIN messages m ON m.search_key = f.rowid WHERE messages_search MATCH ",
                )
                .bind(Value::Text(words.join(" ")))
                .push(" AND m.project_id = ")
                .bind(project)
                .push(")");
            }
            Dialect::Postgres => {
                s.push(" AND session_id IN (SELECT session_id FROM messages WHERE project_id = ").bind(project);
                s.push(" AND to_tsvector('simple', coalesce(input_text, '')) @@ plainto_tsquery('simple', ")
                    .bind(Value::Text(query.search.join(" ")))
                    .push("))");
            }
        }
    }
}

/// Fills in each summary's ratings and rating comments: the non-null ones of its records and
/// messages, in time order.
async fn add_ratings(x: &mut impl Executor, project: ObjectId, items: &mut [ConversationSummary]) -> StoreResult<()> {
    if items.is_empty() {
        return Ok(());
    }
    const KINDS: [Kind; 5] = [Kind::Text, Kind::Time, Kind::Text, Kind::Number, Kind::Text];
    // (session, timestamp, row id, rating, comment)
    type Rated = (String, time::OffsetDateTime, String, Option<f64>, Option<String>);
    let mut found: Vec<Rated> = Vec::new();
    for table in ["records", "messages"] {
        let columns = "session_id, timestamp, id, rating, rating_comment";
        let rows = match x.dialect() {
            Dialect::Sqlite => {
                let sql = format!(
                    "SELECT {columns} FROM {table} WHERE project_id = ?1 AND session_id = ?2 \
                     AND (rating IS NOT NULL OR rating_comment IS NOT NULL)"
                );
                let mut rows = Vec::new();
                for item in items.iter() {
                    rows.extend(x.query(&sql, &[text(project), text(&item.session_id)], &KINDS).await?);
                }
                rows
            }
            Dialect::Postgres => {
                let sql = format!(
                    "SELECT {columns} FROM {table} WHERE project_id = ANY($1::text[]) \
                     AND session_id = ANY($2::text[]) AND (rating IS NOT NULL OR rating_comment IS NOT NULL)"
                );
                let project = [text(project)];
                let sessions: Vec<Value> = items.iter().map(|i| text(&i.session_id)).collect();
                x.query_columns(&sql, &[project.iter().collect(), sessions.iter().collect()], &KINDS).await?
            }
        };
        for row in rows {
            let mut c = Columns::new(row);
            found.push((c.text()?, c.time()?, c.text()?, c.opt_number()?, c.opt_text()?));
        }
    }
    found.sort_by(|a, b| (a.1, &a.2).cmp(&(b.1, &b.2)));
    let position: BTreeMap<String, usize> =
        items.iter().enumerate().map(|(i, item)| (item.session_id.clone(), i)).collect();
    for (session, _, _, rating, comment) in found {
        if let Some(&i) = position.get(&session) {
            items[i].ratings.extend(rating);
            items[i].rating_comments.extend(comment);
        }
    }
    Ok(())
}
