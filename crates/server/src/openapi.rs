//! The OpenAPI 3.1 document, served at `/openapi.json`. Operations come from the handlers'
//! annotations; the record and update schemas are built from the field catalogue, so they
//! cannot drift from what the service accepts.

use axum::Json;
use axum::response::IntoResponse;
use parley_core::{FieldType, RECORD_FIELDS};
use utoipa::openapi::schema::{ArrayBuilder, KnownFormat, ObjectBuilder, Schema, SchemaFormat, SchemaType, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{RefOr, schema};
use utoipa::{Modify, OpenApi, PartialSchema, ToSchema};

use crate::routes::{analytics, apikeys, health, members, projects, tasks, users};

/// The JSON schema of one field's value.
fn field_schema(ty: FieldType, nullable: bool) -> Schema {
    let of = |t: Type| if nullable { SchemaType::from_iter([t, Type::Null]) } else { SchemaType::new(t) };
    let object = ObjectBuilder::new();
    let built = match ty {
        FieldType::Id => object.schema_type(of(Type::String)).pattern(Some("^[0-9a-f]{24}$")),
        FieldType::Text { max_chars } => object.schema_type(of(Type::String)).max_length(Some(max_chars)),
        FieldType::LongText { .. } => object.schema_type(of(Type::String)),
        FieldType::DateTime => {
            object.schema_type(of(Type::String)).format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
        }
        FieldType::Json { .. } => object.schema_type(SchemaType::AnyValue),
        FieldType::TextList => {
            return Schema::Array(
                ArrayBuilder::new()
                    .schema_type(of(Type::Array))
                    .items(ObjectBuilder::new().schema_type(Type::String))
                    .build(),
            );
        }
        FieldType::Number { min, max } => object.schema_type(of(Type::Number)).minimum(min).maximum(max),
        FieldType::Integer { min } => object.schema_type(of(Type::Integer)).minimum(Some(min as f64)),
        FieldType::Boolean => object.schema_type(of(Type::Boolean)),
    };
    Schema::Object(built.build())
}

/// An analytics record as every representation shows it.
pub struct RecordSchema;

impl PartialSchema for RecordSchema {
    fn schema() -> RefOr<Schema> {
        let mut object =
            ObjectBuilder::new().schema_type(Type::Object).description(Some("An analytics record (records.md)."));
        for field in RECORD_FIELDS {
            object = object.property(field.name, field_schema(field.ty, field.nullable())).required(field.name);
        }
        RefOr::T(Schema::Object(object.build()))
    }
}

impl ToSchema for RecordSchema {
    fn name() -> std::borrow::Cow<'static, str> {
        "AnalyticsRecord".into()
    }
}

/// The body of `PATCH /analytics`.
pub struct UpdateRequestSchema;

impl PartialSchema for UpdateRequestSchema {
    fn schema() -> RefOr<Schema> {
        let mut properties = ObjectBuilder::new()
            .schema_type(Type::Object)
            .min_properties(Some(1))
            .additional_properties(Some(schema::AdditionalProperties::FreeForm(false)));
        for field in RECORD_FIELDS.iter().filter(|f| f.editable) {
            properties = properties.property(field.name, field_schema(field.ty, true));
        }
        let text = || ObjectBuilder::new().schema_type(Type::String).build();
        let object = ObjectBuilder::new()
            .schema_type(Type::Object)
            .property("projectId", ObjectBuilder::new().schema_type(Type::String).pattern(Some("^[0-9a-f]{24}$")))
            .property("contactId", text())
            .property("sessionId", text())
            .property("inputId", text())
            .property("properties", properties)
            .required("projectId")
            .required("contactId")
            .required("properties");
        RefOr::T(Schema::Object(object.build()))
    }
}

impl ToSchema for UpdateRequestSchema {
    fn name() -> std::borrow::Cow<'static, str> {
        "UpdateAnalyticsRequest".into()
    }
}

/// An error body (rest.md §8).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Problem {
    /// The status's reason phrase.
    r#type: String,
    /// The reason phrase followed by " Error".
    title: String,
    status: u16,
    detail: String,
    /// The request path.
    instance: String,
    /// The error code (400, 401, 403, 406, 413, 415, 429, 431, 503, 1000, 1002, 1004, 1005, 1008, 1013, 8001).
    code: u16,
    /// `api--<uuid v4>`, also in the `X-Trace-Id` header.
    #[schema(rename = "traceId")]
    trace_id: String,
    /// The failing field, and for a batch the failing record's index.
    #[schema(value_type = Object)]
    details: serde_json::Value,
}

/// The counts of an ingest.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct IngestResult {
    inserted: u64,
    duplicates: u64,
    /// Records dropped because the project does not collect analytics.
    dropped: u64,
}

/// A page of records (the JSON form; HAL puts items under `_embedded.items`).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct RecordPage {
    items: Vec<RecordSchema>,
    total: u64,
    #[schema(rename = "nextCursor")]
    next_cursor: Option<String>,
    #[schema(rename = "previousCursor")]
    previous_cursor: Option<String>,
}

/// The body of `DELETE /analytics/{projectId}`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ErasureRequest {
    /// Required: the contacts whose records are deleted, or null for every contact.
    #[schema(rename = "contactIds")]
    contact_ids: Option<Vec<String>>,
    /// Only records at or after this time.
    #[schema(rename = "timestampStart", format = DateTime)]
    timestamp_start: Option<String>,
    /// Only records at or before this time.
    #[schema(rename = "timestampEnd", format = DateTime)]
    timestamp_end: Option<String>,
}

/// An erasure task.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct TaskView {
    #[schema(rename = "_id")]
    id: String,
    #[schema(rename = "projectId")]
    project_id: String,
    /// queued, running, done or error.
    status: String,
    /// Records deleted so far; final once done.
    deleted: u64,
    /// Why the task failed, when it did.
    error: Option<String>,
    #[schema(rename = "createdAt", format = DateTime)]
    created_at: String,
    #[schema(rename = "startedAt", format = DateTime)]
    started_at: Option<String>,
    #[schema(rename = "finishedAt", format = DateTime)]
    finished_at: Option<String>,
}

struct Credentials;

impl Modify for Credentials {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components
            .add_security_scheme("apiKeyHeader", SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))));
        components
            .add_security_scheme("apiKeyQuery", SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::new("api_key"))));
        components.add_security_scheme("bearer", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "parley", description = "Analytics store for conversational AI agents. Every route is also served under /v2.0."),
    paths(
        analytics::update_records,
        analytics::ingest_records,
        analytics::list_records,
        analytics::get_record,
        analytics::delete_records,
        tasks::get_task,
        projects::create_project,
        projects::list_projects,
        projects::get_project,
        projects::update_project,
        projects::delete_project,
        apikeys::create_api_key,
        apikeys::list_api_keys,
        apikeys::revoke_api_key,
        users::create_user,
        users::list_users,
        users::delete_user,
        members::set_member,
        members::list_members,
        members::remove_member,
        health::live,
        health::ready,
    ),
    components(schemas(RecordSchema, UpdateRequestSchema, Problem, IngestResult, RecordPage, ErasureRequest, TaskView, projects::ProjectView, apikeys::ApiKeyView, users::UserView, users::UserInput, members::MemberView, members::MemberInput)),
    modifiers(&Credentials),
    security(("apiKeyHeader" = []), ("apiKeyQuery" = []), ("bearer" = []))
)]
pub struct ApiDoc;

/// `GET /openapi.json`.
pub async fn document() -> impl IntoResponse {
    Json(ApiDoc::openapi())
}
