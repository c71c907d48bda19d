//! The OpenAPI 3.1 document, served at `/openapi.json`. Operations come from the handlers'
//! annotations; the record and update schemas are built from the field catalogue, so they
//! cannot drift from what the service accepts.

use axum::Extension;
use axum::body::Bytes;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use parley_core::{
    ESCALATION_FIELDS, EXECUTED_STEP_FIELDS, Field, FieldType, GOAL_EVENT_FIELDS, MESSAGE_FIELDS, RECORD_FIELDS,
};
use utoipa::openapi::schema::{ArrayBuilder, KnownFormat, ObjectBuilder, Schema, SchemaFormat, SchemaType, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{RefOr, schema};
use utoipa::{Modify, OpenApi, PartialSchema, ToSchema};

use crate::problem::Problem;

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

/// The schema of a row of a field catalogue, as every representation shows it.
fn catalogue_schema(fields: &[Field], description: &str) -> RefOr<Schema> {
    let mut object = ObjectBuilder::new().schema_type(Type::Object).description(Some(description));
    for field in fields {
        object = object.property(field.name, field_schema(field.ty, field.nullable())).required(field.name);
    }
    RefOr::T(Schema::Object(object.build()))
}

/// An analytics record as every representation shows it.
pub struct RecordSchema;

impl PartialSchema for RecordSchema {
    fn schema() -> RefOr<Schema> {
        catalogue_schema(RECORD_FIELDS, "An analytics record (docs/contract/records.md).")
    }
}

/// A conversation message as every representation shows it.
pub struct MessageSchema;

impl PartialSchema for MessageSchema {
    fn schema() -> RefOr<Schema> {
        catalogue_schema(MESSAGE_FIELDS, "A conversation message (docs/contract/conversations.md).")
    }
}

impl ToSchema for MessageSchema {
    fn name() -> std::borrow::Cow<'static, str> {
        "ConversationMessage".into()
    }
}

/// An executed step as every representation shows it.
pub struct ExecutedStepSchema;

impl PartialSchema for ExecutedStepSchema {
    fn schema() -> RefOr<Schema> {
        catalogue_schema(
            EXECUTED_STEP_FIELDS,
            "A step a bot went through in a session (docs/contract/conversations.md).",
        )
    }
}

impl ToSchema for ExecutedStepSchema {
    fn name() -> std::borrow::Cow<'static, str> {
        "ExecutedStep".into()
    }
}

/// A write of an escalation as ingest takes it, and an escalation as every representation shows it.
pub struct EscalationSchema;

impl PartialSchema for EscalationSchema {
    fn schema() -> RefOr<Schema> {
        catalogue_schema(ESCALATION_FIELDS, "A handover to a human agent (docs/contract/conversations.md).")
    }
}

impl ToSchema for EscalationSchema {
    fn name() -> std::borrow::Cow<'static, str> {
        "LiveAgentEscalation".into()
    }
}

/// A goal event as ingest takes it and every representation shows it.
pub struct GoalEventSchema;

impl PartialSchema for GoalEventSchema {
    fn schema() -> RefOr<Schema> {
        catalogue_schema(GOAL_EVENT_FIELDS, "A goal step reached in a session (docs/contract/conversations.md).")
    }
}

impl ToSchema for GoalEventSchema {
    fn name() -> std::borrow::Cow<'static, str> {
        "GoalEvent".into()
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

/// The body of `DELETE /analytics/{projectId}`, as [`parley_core::Erasure::parse`] reads it.
pub struct ErasureRequestSchema;

impl PartialSchema for ErasureRequestSchema {
    fn schema() -> RefOr<Schema> {
        let time = || {
            ObjectBuilder::new()
                .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
        };
        let contacts = ArrayBuilder::new()
            .schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
            .items(ObjectBuilder::new().schema_type(Type::String))
            .description(Some("Required: the contacts whose records are deleted, or null for every contact."));
        let object = ObjectBuilder::new()
            .schema_type(Type::Object)
            .additional_properties(Some(schema::AdditionalProperties::FreeForm(false)))
            .property("contactIds", contacts)
            .property("timestampStart", time().description(Some("Inclusive lower bound of the records' timestamp.")))
            .property("timestampEnd", time().description(Some("Inclusive upper bound of the records' timestamp.")))
            .required("contactIds");
        RefOr::T(Schema::Object(object.build()))
    }
}

impl ToSchema for ErasureRequestSchema {
    fn name() -> std::borrow::Cow<'static, str> {
        "ErasureRequest".into()
    }
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

/// What the document says beside its operations, which the router adds as it registers them
/// (`crate::app`).
#[derive(OpenApi)]
#[openapi(
    info(title = "parley", description = "Analytics store for conversational AI agents. Every route under /new/v2.0 is also served under /v2.0, and the health routes under both prefixes too."),
    components(schemas(Problem)),
    modifiers(&Credentials),
    security(("apiKeyHeader" = []), ("apiKeyQuery" = []), ("bearer" = []))
)]
pub struct ApiDoc;

/// The document as served, written once when the router is built.
#[derive(Clone)]
pub struct Document(pub Bytes);

#[utoipa::path(get, path = "/openapi.json", tag = "meta", security(), responses(
    (status = 200, description = "This document (OpenAPI 3.1)", content_type = "application/json"),
))]
/// `GET /openapi.json`.
pub async fn document(Extension(Document(bytes)): Extension<Document>) -> Response {
    ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], bytes).into_response()
}
