//! Analytics records: update (docs/contract/rest.md §1), ingest (§2), list and read (§3).

use axum::extract::{OriginalUri, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use parley_core::value::now;
use parley_core::{
    Caller, Erasure, ListParams, NewRecord, ProjectAccess, RECORD_FIELDS, Record, RecordQuery, RecordUpdate, Task,
};

use super::tasks::TaskView;
use super::{IngestResult, require_project};
use crate::extract::{ApiJson, IngestBody, PathId, QueryParams};
use crate::negotiate::Format;
use crate::openapi::{ErasureRequestSchema, NewRecordSchema, RecordSchema, UpdateRequestSchema};
use crate::problem::{ApiError, BodyRejection};
use crate::represent::{Body, Collection, Page, PageRef, respond};
use crate::state::AppState;

#[utoipa::path(
    patch,
    path = "/analytics",
    tag = "analytics",
    request_body = UpdateRequestSchema,
    responses(
        (status = 204, description = "Updated; X-Matched-Records says how many records matched. An update that names an inputId and matches nothing is kept as a pending update and applied when that record is ingested (X-Update-Deferred: true)",
            headers(
                ("X-Matched-Records" = u64, description = "Number of records updated"),
                ("X-Update-Deferred" = bool, description = "Present (true) when the update was kept as a pending update"),
            )),
        ApiError,
        BodyRejection,
    )
)]
/// `PATCH /analytics`: merges the named properties into every matching record, atomically. An
/// update that names an input and matches nothing waits for that record (docs/contract/rest.md §1), unless the
/// project does not collect analytics: then the record will never come.
pub async fn update_records(
    State(state): State<AppState>,
    caller: Caller,
    body: ApiJson<RecordUpdate>,
) -> Result<Response, ApiError> {
    let update = body.parse()?;
    let project = require_project(&state, &caller, update.project_id, ProjectAccess::Write).await?;
    let now = now();
    let defer_until =
        state.pending_update_window.filter(|_| project.settings.collect_analytics).map(|window| now + window);
    let outcome = state.store.update_records(update, now, defer_until).await?;
    state.metrics.rows("records", "updated", outcome.matched);
    let mut response = (StatusCode::NO_CONTENT, [("x-matched-records", outcome.matched.to_string())]).into_response();
    if outcome.deferred {
        response.headers_mut().insert("x-update-deferred", HeaderValue::from_static("true"));
    }
    Ok(response)
}

#[utoipa::path(
    post,
    path = "/analytics/records",
    tag = "analytics",
    request_body(content(
        (Vec<NewRecordSchema> = "application/json"),
        (NewRecordSchema = "application/x-ndjson"),
    ), description = "A JSON array of records, or one record per line (NDJSON); at most 10 000 records or 16 MiB"),
    responses(
        (status = 201, description = "Stored (durable)", body = IngestResult),
        (status = 200, description = "Every record was a duplicate or dropped", body = IngestResult),
        ApiError,
        BodyRejection,
    )
)]
/// `POST /analytics/records`: validates the whole batch, then stores it in one transaction.
pub async fn ingest_records(
    State(state): State<AppState>,
    caller: Caller,
    format: Format,
    OriginalUri(uri): OriginalUri,
    body: IngestBody,
) -> Result<Response, ApiError> {
    super::ingest::<NewRecord>(&state, &caller, format, &uri, body).await
}

#[utoipa::path(
    get,
    path = "/analytics",
    tag = "analytics",
    params(
        ("projectId" = String, Query, description = "The project (required)"),
        ("contactId" = Option<String>, Query), ("sessionId" = Option<String>, Query),
        ("from" = Option<String>, Query, description = "Inclusive lower bound of timestamp"),
        ("to" = Option<String>, Query, description = "Exclusive upper bound of timestamp"),
        ("limit" = Option<u32>, Query, description = "1..100, default 25"),
        ("skip" = Option<u64>, Query), ("sort" = Option<String>, Query, description = "field:asc|desc, comma-separated; default timestamp:asc"),
        ("next" = Option<String>, Query, description = "Cursor from nextCursor"), ("previous" = Option<String>, Query, description = "Cursor from previousCursor"),
    ),
    responses(
        (status = 200, description = "A page of records; also as HAL (default), XML and CSV", body = Page<RecordSchema>),
        ApiError,
    )
)]
/// `GET /analytics`: one page of a project's records.
pub async fn list_records(
    State(state): State<AppState>,
    caller: Caller,
    format: Format,
    OriginalUri(uri): OriginalUri,
    QueryParams(params): QueryParams<ListParams>,
) -> Result<Response, ApiError> {
    let query = RecordQuery::parse(params)?;
    require_project(&state, &caller, query.filter.project_id, ProjectAccess::Read).await?;
    let page = state.store.list_records(&query).await?;
    Ok(respond(
        format,
        StatusCode::OK,
        Body::Collection(Collection {
            items: page.items.iter().map(Record::to_json).collect(),
            columns: RECORD_FIELDS.iter().map(|f| f.name.to_owned()).collect(),
            total: page.total,
            next: page.next.map(PageRef::Cursor),
            previous: page.previous.map(PageRef::Cursor),
            self_href: uri.to_string(),
        }),
    ))
}

#[utoipa::path(
    get,
    path = "/analytics/{id}",
    tag = "analytics",
    params(("id" = String, Path, description = "The record id")),
    responses(
        (status = 200, description = "The record", body = RecordSchema),
        ApiError,
    )
)]
/// `GET /analytics/{recordId}`: one record of a project the caller may read.
pub async fn get_record(
    State(state): State<AppState>,
    caller: Caller,
    format: Format,
    OriginalUri(uri): OriginalUri,
    PathId(id): PathId,
) -> Result<Response, ApiError> {
    let projects = state.store.visible_project_ids(&caller).await?;
    let record = state.store.get_record(&projects, id).await?.ok_or_else(|| ApiError::not_found("record"))?;
    Ok(respond(format, StatusCode::OK, Body::Resource { value: record.to_json(), self_href: uri.path().to_owned() }))
}

#[utoipa::path(
    delete,
    path = "/analytics/{id}",
    tag = "analytics",
    params(("id" = String, Path, description = "The project id")),
    request_body(content = ErasureRequestSchema, description = "contactIds: a list, or null for every contact; timestampStart and timestampEnd bound the records' timestamp, both inclusive"),
    responses(
        (status = 202, description = "Queued; follow the task at the Location header", body = TaskView,
            headers(("Location" = String, description = "The task"))),
        ApiError,
        BodyRejection,
    )
)]
/// `DELETE /analytics/{projectId}`: queues the erasure of the project's matching records; a
/// background worker deletes them in batches.
pub async fn delete_records(
    State(state): State<AppState>,
    caller: Caller,
    format: Format,
    OriginalUri(uri): OriginalUri,
    PathId(project_id): PathId,
    body: ApiJson<Erasure>,
) -> Result<Response, ApiError> {
    let project = require_project(&state, &caller, project_id, ProjectAccess::Write).await?;
    let erasure = body.parse()?;
    let task = Task::erasure(project.organisation, project.id, caller.user_id, erasure, now());
    state.store.create_task(task.clone()).await?;
    state.tasks_queued.notify_one();
    let prefix = uri.path().rsplit_once("/analytics/").map_or("", |(prefix, _)| prefix);
    let href = format!("{prefix}/tasks/{}", task.id);
    let mut response =
        respond(format, StatusCode::ACCEPTED, Body::Resource { value: TaskView::of(&task), self_href: href.clone() });
    if let Ok(location) = HeaderValue::from_str(&href) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}
