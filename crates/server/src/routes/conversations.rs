//! Conversations (docs/contract/conversations.md): message ingest, and the reference SDK's calls
//! `indexConversations`, `readConversation` and `deleteConversation`.

use std::collections::HashMap;

use axum::extract::{OriginalUri, Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use parley_core::conversations::SUMMARY_COLUMNS;
use parley_core::field::idx;
use parley_core::message::idx as message_idx;
use parley_core::{
    Caller, ConversationQuery, ConversationSummary, Error, MESSAGE_FIELDS, Message, NewMessage, ObjectId,
    ProjectAccess, RecordFilter, SortKey,
};
use serde_json::{Map, Value as Json};

use super::{IngestResult, query_pairs, require_project};
use crate::extract::IngestBody;
use crate::negotiate::Format;
use crate::openapi::{MessageSchema, NewMessageSchema};
use crate::problem::{ApiError, BodyRejection};
use crate::represent::{Body, Collection, Index, PageRef, respond};
use crate::state::AppState;

/// The record fields `expertMode=true` adds to each input of a transcript.
const EXPERT_FIELDS: [(usize, &str); 5] = [
    (idx::INTENT, "intent"),
    (idx::INTENT_SCORE, "intentScore"),
    (idx::SLOTS, "slots"),
    (idx::STATE, "state"),
    (idx::UNDERSTOOD, "understood"),
];

/// The most messages one transcript answer holds.
const MAX_TRANSCRIPT: u32 = 100_000;

#[utoipa::path(
    post,
    path = "/conversations/messages",
    tag = "conversations",
    request_body(content(
        (Vec<NewMessageSchema> = "application/json"),
        (NewMessageSchema = "application/x-ndjson"),
    ), description = "A JSON array of messages, or one message per line (NDJSON); at most 10 000 messages or 16 MiB"),
    responses(
        (status = 201, description = "Stored (durable); the sessions they name are up to date", body = IngestResult),
        (status = 200, description = "Every message was a duplicate or dropped", body = IngestResult),
        ApiError,
        BodyRejection,
    )
)]
/// `POST /conversations/messages`: validates the whole batch, then stores it and the sessions it
/// names in one transaction.
pub async fn ingest_messages(
    State(state): State<AppState>,
    caller: Caller,
    format: Format,
    OriginalUri(uri): OriginalUri,
    body: IngestBody,
) -> Result<Response, ApiError> {
    super::ingest::<NewMessage>(&state, &caller, format, &uri, body).await
}

/// A session's summary in the conversations index (docs/contract/conversations.md, "Reading").
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
#[schema(as = ConversationSummary)]
pub struct SummaryView {
    _id: String,
    #[schema(rename = "sessionId")]
    session_id: String,
    #[schema(rename = "contactId")]
    contact_id: String,
    #[schema(rename = "projectId")]
    project_id: String,
    #[schema(rename = "projectName")]
    project_name: Option<String>,
    channel: Option<String>,
    #[schema(rename = "flowName")]
    flow_name: Option<String>,
    #[schema(rename = "endpointName")]
    endpoint_name: Option<String>,
    /// How many messages the session has.
    messages: u64,
    /// The first message's time.
    #[schema(rename = "startTime", format = DateTime)]
    start_time: String,
    /// The last message's time.
    #[schema(rename = "endTime", format = DateTime)]
    end_time: String,
    /// The non-null ratings of its messages and records, in time order.
    ratings: Vec<f64>,
    #[schema(rename = "ratingComments")]
    rating_comments: Vec<String>,
}

/// One summary as the index shows it.
fn summary(item: &ConversationSummary) -> Map<String, Json> {
    item.to_json()
}

#[utoipa::path(
    get,
    path = "/conversations",
    tag = "conversations",
    params(
        ("projectId" = String, Query, description = "The project (required)"),
        ("contactIds" = Option<Vec<String>>, Query, description = "Repeatable, also as contactIds[]; never comma-separated"),
        ("from" = Option<String>, Query, description = "Sessions with a message at or after this time"),
        ("to" = Option<String>, Query, description = "Sessions with a message before this time"),
        ("channel" = Option<String>, Query),
        ("search" = Option<String>, Query, description = "Words that one message of the session contains, all of them, in any case"),
        ("limit" = Option<u32>, Query, description = "1..100, default 25"),
        ("skip" = Option<u64>, Query),
        ("next" = Option<String>, Query, description = "Cursor from nextCursor"),
        ("previous" = Option<String>, Query, description = "Cursor from previousCursor"),
    ),
    responses(
        (status = 200, description = "One summary per session with messages, newest last message first: {items, total, _links}", body = Index<SummaryView>),
        ApiError,
    )
)]
/// `GET /conversations`: the conversations index of a project.
pub async fn list_conversations(
    State(state): State<AppState>,
    caller: Caller,
    format: Format,
    OriginalUri(uri): OriginalUri,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let query = ConversationQuery::parse(&query_pairs(raw.as_deref())?)?;
    require_project(&state, &caller, query.project_id, ProjectAccess::Read).await?;
    let page = state.store.list_conversations(&query).await?;
    Ok(respond(
        format,
        StatusCode::OK,
        Body::Index(Collection {
            items: page.items.iter().map(summary).collect(),
            columns: SUMMARY_COLUMNS.iter().map(|c| (*c).to_owned()).collect(),
            total: page.total,
            next: page.next.map(PageRef::Cursor),
            previous: page.previous.map(PageRef::Cursor),
            self_href: uri.to_string(),
        }),
    ))
}

/// `projectId` of a transcript's query string, and `expertMode`.
fn transcript_params(raw: Option<&str>) -> Result<(ObjectId, bool), ApiError> {
    let pairs = query_pairs(raw)?;
    let value = |name: &str| pairs.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
    let project = value("projectId").filter(|p| !p.is_empty()).ok_or_else(|| Error::missing("projectId"))?;
    let project = ObjectId::parse(project).map_err(|e| Error::invalid("projectId", e))?;
    let expert = match value("expertMode") {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(Error::invalid("expertMode", "must be true or false").into()),
    };
    Ok((project, expert))
}

#[utoipa::path(
    get,
    path = "/conversations/{sessionId}",
    tag = "conversations",
    params(
        ("sessionId" = String, Path),
        ("projectId" = String, Query, description = "The project (required)"),
        ("expertMode" = Option<bool>, Query, description = "true adds each input's intent, intentScore, slots, state and understood from its record"),
    ),
    responses(
        (status = 200, description = "The session's messages in time order: {items, total, _links}", body = Index<MessageSchema>),
        ApiError,
    )
)]
/// `GET /conversations/{sessionId}`: a session's transcript.
pub async fn read_conversation(
    State(state): State<AppState>,
    caller: Caller,
    format: Format,
    OriginalUri(uri): OriginalUri,
    Path(session): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let (project, expert) = transcript_params(raw.as_deref())?;
    require_project(&state, &caller, project, ProjectAccess::Read).await?;
    let messages = state.store.transcript(project, &session).await?;
    let mut columns: Vec<String> = MESSAGE_FIELDS.iter().map(|f| f.name.to_owned()).collect();
    let mut items: Vec<Map<String, Json>> = messages.iter().map(Message::to_json).collect();
    if expert {
        columns.extend(EXPERT_FIELDS.iter().map(|(_, name)| (*name).to_owned()));
        let filter =
            RecordFilter { project_id: project, contact_id: None, session_id: Some(session), from: None, to: None };
        let sort =
            [SortKey { field: idx::TIMESTAMP, descending: false }, SortKey { field: idx::ID, descending: false }];
        let records = state.store.fetch_records(&filter, &sort, None, 0, MAX_TRANSCRIPT).await?;
        let by_input: HashMap<&str, &parley_core::Record> =
            records.iter().map(|r| (r.get(idx::INPUT_ID).as_text().unwrap_or_default(), r)).collect();
        for (item, message) in items.iter_mut().zip(&messages) {
            if message.get(message_idx::TYPE).as_text() != Some("input") {
                continue;
            }
            let record = message.get(message_idx::INPUT_ID).as_text().and_then(|input| by_input.get(input));
            for (index, name) in EXPERT_FIELDS {
                item.insert(name.to_owned(), record.map_or(Json::Null, |r| r.get(index).to_json()));
            }
        }
    }
    let total = items.len() as u64;
    Ok(respond(
        format,
        StatusCode::OK,
        Body::Index(Collection { items, columns, total, next: None, previous: None, self_href: uri.to_string() }),
    ))
}

#[utoipa::path(
    delete,
    path = "/conversations/{sessionId}",
    tag = "conversations",
    params(
        ("sessionId" = String, Path),
        ("projectId" = String, Query, description = "The project (required)"),
    ),
    responses(
        (status = 200, description = "The transcript is gone from every read path; the session stays, with no messages. The body is {}", body = serde_json::Map<String, serde_json::Value>),
        ApiError,
    )
)]
/// `DELETE /conversations/{sessionId}`: deletes a session's transcript at once.
pub async fn delete_conversation(
    State(state): State<AppState>,
    caller: Caller,
    Path(session): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let (project, _) = transcript_params(raw.as_deref())?;
    require_project(&state, &caller, project, ProjectAccess::Write).await?;
    state.store.delete_transcript(project, &session).await?;
    Ok((StatusCode::OK, axum::Json(Json::Object(Map::new()))).into_response())
}
