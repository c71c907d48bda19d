//! The OpenAPI 3.1 document, served at `/openapi.json`. Operations come from the handlers'
//! annotations; the record and update schemas are built from the field catalogue, so they
//! cannot drift from what the service accepts.

use axum::Extension;
use axum::body::Bytes;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use parley_core::field::Origin;
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

/// The schema of a row of a field catalogue as ingest takes it: the fields a client sets, the
/// required ones required, any other name refused; the fields parley sets are read-only (an
/// exported row may carry them back, and they are ignored).
fn ingest_schema(fields: &[Field], description: &str) -> RefOr<Schema> {
    let mut object = ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some(description))
        .additional_properties(Some(schema::AdditionalProperties::FreeForm(false)));
    for field in fields {
        let server = field.origin == Origin::Server;
        let mut property = field_schema(field.ty, true);
        if let Schema::Object(object) = &mut property {
            object.read_only = server.then_some(true);
        }
        object = object.property(field.name, property);
        if field.origin == Origin::Required {
            object = object.required(field.name);
        }
    }
    RefOr::T(Schema::Object(object.build()))
}

/// A row of a collection as every representation shows it, named `$name`, from its field
/// catalogue.
macro_rules! stored_schema {
    ($schema:ident $name:literal, $fields:expr, $what:literal) => {
        #[doc = concat!($what, " as every representation shows it.")]
        pub struct $schema;

        impl PartialSchema for $schema {
            fn schema() -> RefOr<Schema> {
                catalogue_schema($fields, concat!($what, "."))
            }
        }

        impl ToSchema for $schema {
            fn name() -> std::borrow::Cow<'static, str> {
                $name.into()
            }
        }
    };
}

/// A row of a collection as ingest takes it, named `$name`, from its field catalogue.
macro_rules! new_row_schema {
    ($schema:ident $name:literal, $fields:expr, $what:literal) => {
        #[doc = concat!($what, " as ingest takes it.")]
        pub struct $schema;

        impl PartialSchema for $schema {
            fn schema() -> RefOr<Schema> {
                ingest_schema($fields, concat!($what, ", as ingest takes it."))
            }
        }

        impl ToSchema for $schema {
            fn name() -> std::borrow::Cow<'static, str> {
                $name.into()
            }
        }
    };
}

// Records and messages are also read over REST; the other collections only over OData, whose
// `$metadata` describes them.
stored_schema!(RecordSchema "AnalyticsRecord", RECORD_FIELDS, "An analytics record (docs/contract/records.md)");
stored_schema!(MessageSchema "ConversationMessage", MESSAGE_FIELDS,
    "A conversation message (docs/contract/conversations.md)");
new_row_schema!(NewRecordSchema "NewAnalyticsRecord", RECORD_FIELDS, "An analytics record (docs/contract/records.md)");
new_row_schema!(NewMessageSchema "NewConversationMessage", MESSAGE_FIELDS,
    "A conversation message (docs/contract/conversations.md)");
new_row_schema!(NewExecutedStepSchema "NewExecutedStep", EXECUTED_STEP_FIELDS,
    "A step a bot went through in a session (docs/contract/conversations.md)");
new_row_schema!(EscalationWriteSchema "LiveAgentEscalationWrite", ESCALATION_FIELDS,
    "A handover to a human agent (docs/contract/conversations.md)");
new_row_schema!(NewGoalEventSchema "NewGoalEvent", GOAL_EVENT_FIELDS,
    "A goal step reached in a session (docs/contract/conversations.md)");

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

/// The OData services (docs/odata.md), which have their own grammar and are described in full by
/// their `$metadata`: the document lists their addresses and system query options, so that a
/// client of the REST API finds them here too.
struct ODataPaths;

impl Modify for ODataPaths {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn};
        use utoipa::openapi::{Required, ResponseBuilder};
        let sets: Vec<String> =
            parley_odata::EntityType::all(parley_odata::IdName::Id).into_iter().map(|e| e.set.to_owned()).collect();
        let text = |description: &str| {
            ObjectBuilder::new().schema_type(Type::String).description(Some(description.to_owned())).build()
        };
        let set = ParameterBuilder::new()
            .name("entitySet")
            .parameter_in(ParameterIn::Path)
            .required(Required::True)
            .schema(Some(ObjectBuilder::new().schema_type(Type::String).enum_values(Some(sets)).build()))
            .build();
        let option = |name: &str, description: &str| {
            ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Query)
                .required(Required::False)
                .schema(Some(text(description)))
                .description(Some(description))
                .build()
        };
        let options = [
            ("$filter", "A boolean expression over the properties"),
            ("$select", "Properties to answer, comma-separated"),
            ("$orderby", "Properties with asc or desc, comma-separated"),
            ("$top", "At most this many rows"),
            ("$skip", "Leave out this many rows first"),
            ("$count", "true adds @odata.count"),
            ("$apply", "filter, groupby and aggregate transformations"),
            ("$skiptoken", "From @odata.nextLink"),
            ("$format", "json, xml or csv"),
        ];
        let answer = |description: &str, media: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    media,
                    utoipa::openapi::content::ContentBuilder::new().schema(Some(ObjectBuilder::new())).build(),
                )
                .build()
        };
        let error = || {
            ResponseBuilder::new()
                .description("An OData error: {\"error\": {\"code\", \"message\"}}")
                .content("application/json", utoipa::openapi::content::ContentBuilder::new().build())
                .build()
        };
        let operation = |summary: &str, parameters: Vec<utoipa::openapi::path::Parameter>, media: &str| {
            OperationBuilder::new()
                .tag("odata")
                .summary(Some(summary))
                .description(Some("Also under /v2.3, where each key is called _id."))
                .parameters(Some(parameters))
                .response("200", answer(summary, media))
                .response("400", error())
                .response("401", error())
                .response("403", error())
                .build()
        };
        let with_options = || {
            let mut parameters = vec![set.clone()];
            parameters.extend(options.iter().map(|(name, description)| option(name, description)));
            parameters
        };
        let key = ParameterBuilder::new()
            .name("id")
            .parameter_in(ParameterIn::Path)
            .required(Required::True)
            .schema(Some(text("The row's key")))
            .build();
        openapi.paths.add_path_operation(
            "/v2.4/",
            vec![HttpMethod::Get],
            operation("The service document: every entity set", Vec::new(), "application/json"),
        );
        openapi.paths.add_path_operation(
            "/v2.4/$metadata",
            vec![HttpMethod::Get],
            operation("The entity types and sets, as CSDL XML", Vec::new(), "application/xml"),
        );
        openapi.paths.add_path_operation(
            "/v2.4/{entitySet}",
            vec![HttpMethod::Get],
            operation(
                "The rows of an entity set the options select, a page at a time",
                with_options(),
                "application/json",
            ),
        );
        let mut counted = with_options();
        counted.retain(|p| {
            !["$top", "$skip", "$skiptoken", "$select", "$orderby", "$format", "$count"].contains(&p.name.as_str())
        });
        openapi.paths.add_path_operation(
            "/v2.4/{entitySet}/$count",
            vec![HttpMethod::Get],
            operation("How many rows the options select, as text", counted, "text/plain"),
        );
        openapi.paths.add_path_operation(
            "/v2.4/{entitySet}('{id}')",
            vec![HttpMethod::Get],
            operation(
                "One row by its key",
                vec![set.clone(), key, option("$select", "Properties to answer")],
                "application/json",
            ),
        );
    }
}

/// What the document says beside its operations, which the router adds as it registers them
/// (`crate::app`).
#[derive(OpenApi)]
#[openapi(
    info(title = "parley", description = "Analytics store for conversational AI agents. Every route under /new/v2.0 is also served under /v2.0, and the health routes under both prefixes too."),
    servers((url = "/", description = "This server")),
    components(schemas(Problem)),
    modifiers(&Credentials, &ODataPaths),
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
