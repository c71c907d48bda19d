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

use serde_json::Value as Json;

use crate::problem::Problem;

/// The JSON schema of one field's value.
fn field_schema(ty: FieldType, nullable: bool) -> RefOr<Schema> {
    let of = |t: Type| if nullable { SchemaType::from_iter([t, Type::Null]) } else { SchemaType::new(t) };
    let object = ObjectBuilder::new();
    let built = match ty {
        FieldType::Id => object.schema_type(of(Type::String)).pattern(Some(ID_PATTERN)),
        FieldType::Text { max_chars } => {
            object.schema_type(of(Type::String)).max_length(Some(max_chars)).pattern(Some(TEXT_PATTERN))
        }
        FieldType::LongText { .. } => object.schema_type(of(Type::String)).pattern(Some(TEXT_PATTERN)),
        FieldType::DateTime => {
            object.schema_type(of(Type::String)).format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
        }
        FieldType::Json { .. } => return RefOr::Ref(utoipa::openapi::Ref::from_schema_name(JSON_VALUE)),
        FieldType::TextList => {
            return RefOr::T(Schema::Array(
                ArrayBuilder::new()
                    .schema_type(of(Type::Array))
                    .max_items(Some(parley_core::value::MAX_LIST_ITEMS))
                    .items(
                        ObjectBuilder::new()
                            .schema_type(Type::String)
                            .max_length(Some(parley_core::value::MAX_LIST_ITEM_CHARS))
                            .pattern(Some(TEXT_PATTERN)),
                    )
                    .build(),
            ));
        }
        FieldType::Number { min, max } => object.schema_type(of(Type::Number)).minimum(min).maximum(max),
        FieldType::Integer { min } => {
            object.schema_type(of(Type::Integer)).minimum(Some(min as f64)).maximum(Some(i64::MAX as f64))
        }
        FieldType::Boolean => object.schema_type(of(Type::Boolean)),
    };
    RefOr::T(Schema::Object(built.build()))
}

/// A project's `settings` as a change names them: the settings of [`ProjectSettings`] with the
/// kinds of their defaults, nothing else.
///
/// [`ProjectSettings`]: parley_core::ProjectSettings
pub fn project_settings_schema() -> schema::Object {
    // `null` names no setting.
    let mut object = ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Object, Type::Null]))
        .additional_properties(Some(schema::AdditionalProperties::FreeForm(false)));
    let defaults = serde_json::to_value(parley_core::ProjectSettings::default()).unwrap_or_default();
    for (name, value) in defaults.as_object().into_iter().flatten() {
        let property = match value {
            Json::Bool(_) => ObjectBuilder::new().schema_type(Type::Boolean),
            Json::String(_) => ObjectBuilder::new().schema_type(Type::String).enum_values(
                parley_core::project::WORD_SETTINGS
                    .iter()
                    .find(|(word, _)| word == name)
                    .map(|(_, words)| words.to_vec()),
            ),
            _ => ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(0.0))
                .maximum(Some(f64::from(parley_core::project::MAX_RETENTION_DAYS))),
        };
        object = object.property(name, property);
    }
    object.build()
}

/// A JSON object the stores can hold, or null.
pub fn json_object_schema() -> schema::Object {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Object, Type::Null]))
        .additional_properties(Some(schema::AdditionalProperties::RefOr(RefOr::Ref(
            utoipa::openapi::Ref::from_schema_name(JSON_VALUE),
        ))))
        .build()
}

/// An object id: 24 lowercase hexadecimal characters.
const ID_PATTERN: &str = "^[0-9a-f]{24}$";
/// Any text a store can hold: everything but U+0000.
const TEXT_PATTERN: &str = "^[^\\u0000]*$";
/// The schema of a JSON value the stores can hold (no U+0000 in any string or key), for the
/// fields that take any JSON.
const JSON_VALUE: &str = "JsonValue";

fn json_value_schema() -> Json {
    let this = serde_json::json!({"$ref": format!("#/components/schemas/{JSON_VALUE}")});
    serde_json::json!({
        "description": "Any JSON value without U+0000 in its strings and keys.",
        "anyOf": [
            {"type": ["null", "boolean", "number"]},
            {"type": "string", "pattern": TEXT_PATTERN},
            {"type": "array", "items": this},
            {"type": "object", "propertyNames": {"pattern": TEXT_PATTERN}, "additionalProperties": this},
        ],
    })
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
fn ingest_schema(fields: &[Field], narrower: &[(&str, Json)], description: &str) -> RefOr<Schema> {
    let mut object = ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some(description))
        .additional_properties(Some(schema::AdditionalProperties::FreeForm(false)));
    for field in fields {
        let server = field.origin == Origin::Server;
        let mut property = field_schema(field.ty, server || field.nullable());
        if let Some((_, narrower)) = narrower.iter().find(|(name, _)| *name == field.name) {
            property = serde_json::from_value(narrower.clone()).unwrap_or(property);
        }
        if let RefOr::T(Schema::Object(object)) = &mut property {
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
    ($schema:ident $name:literal, $fields:expr, $choices:expr, $what:literal) => {
        #[doc = concat!($what, " as ingest takes it.")]
        pub struct $schema;

        impl PartialSchema for $schema {
            fn schema() -> RefOr<Schema> {
                ingest_schema($fields, $choices, concat!($what, ", as ingest takes it."))
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
/// A text that is one of `allowed`.
fn one_of(allowed: &[&str]) -> Json {
    serde_json::json!({"type": "string", "enum": allowed})
}

/// A message's attachments: a list of objects with string `url`, `name` and `type`, or null.
fn attachments() -> Json {
    let text = serde_json::json!({"type": "string", "pattern": TEXT_PATTERN});
    let keys = parley_core::message::ATTACHMENT_KEYS.map(|key| (key.to_owned(), text.clone()));
    serde_json::json!({
        "type": ["array", "null"],
        "items": {"type": "object", "additionalProperties": false, "properties": serde_json::Map::from_iter(keys)},
    })
}

new_row_schema!(NewRecordSchema "NewAnalyticsRecord", RECORD_FIELDS, &[],
    "An analytics record (docs/contract/records.md)");
new_row_schema!(NewMessageSchema "NewConversationMessage", MESSAGE_FIELDS,
    &[
        ("type", one_of(&parley_core::message::MESSAGE_TYPES)),
        ("source", one_of(&parley_core::message::MESSAGE_SOURCES)),
        ("inputAttachments", attachments()),
    ],
    "A conversation message (docs/contract/conversations.md)");
new_row_schema!(NewExecutedStepSchema "NewExecutedStep", EXECUTED_STEP_FIELDS,
    &[("type", one_of(&parley_core::step::STEP_TYPES))],
    "A step a bot went through in a session (docs/contract/conversations.md)");
new_row_schema!(EscalationWriteSchema "LiveAgentEscalationWrite", ESCALATION_FIELDS,
    &[("status", one_of(&parley_core::escalation::STATUSES))],
    "A handover to a human agent (docs/contract/conversations.md)");
new_row_schema!(NewGoalEventSchema "NewGoalEvent", GOAL_EVENT_FIELDS, &[],
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
        let text = || ObjectBuilder::new().schema_type(Type::String).pattern(Some(TEXT_PATTERN)).build();
        let object = ObjectBuilder::new()
            .schema_type(Type::Object)
            .additional_properties(Some(schema::AdditionalProperties::FreeForm(false)))
            .property("projectId", ObjectBuilder::new().schema_type(Type::String).pattern(Some(ID_PATTERN)))
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
            .min_items(Some(1))
            .items(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .min_length(Some(1))
                    .max_length(Some(1024))
                    .pattern(Some(TEXT_PATTERN)),
            )
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
                .response("404", error())
                .build()
        };
        // The service document and `$metadata` describe no data and need no credentials.
        let public = |mut operation: utoipa::openapi::path::Operation| {
            operation.security = Some(Vec::new());
            operation
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
            public(operation("The service document: every entity set", Vec::new(), "application/json")),
        );
        openapi.paths.add_path_operation(
            "/v2.4/$metadata",
            vec![HttpMethod::Get],
            public(operation("The entity types and sets, as CSDL XML", Vec::new(), "application/xml")),
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

/// Rules every operation follows, applied to the document as served, so that each is said in
/// one place rather than on every handler:
///
/// - Answers under the prefixes are negotiated (docs/api.md, "Representations"): a JSON answer
///   is also served as HAL, where a page carries its items under `_embedded.items` and every
///   object may carry `_links`.
pub fn finish(document: &mut Json) {
    represented_as_hal(document);
    text_rules(document);
}

/// The parameters that name an object by its id, wherever they appear under the prefixes.
const ID_PARAMETERS: [&str; 6] = ["projectId", "userId", "apiKeyId", "goalId", "taskId", "id"];

/// What every text a client sends obeys, said once: an id parameter is an id, `limit` is 1 to
/// 100, and no text holds U+0000, which neither store can keep (a string schema of a parameter or
/// a request body that says nothing narrower gets that pattern, an object's keys too); a path
/// segment is never empty. Answers are left as they are: an error may quote what was sent.
fn text_rules(document: &mut Json) {
    fn narrow(schema: &mut Json) {
        match schema {
            Json::Object(map) => {
                let is_text = match map.get("type") {
                    Some(Json::String(t)) => t == "string",
                    Some(Json::Array(types)) => types.iter().any(|t| t == "string"),
                    _ => false,
                };
                let said = ["pattern", "enum", "format", "const"].iter().any(|k| map.contains_key(*k));
                if is_text && !said {
                    map.insert("pattern".into(), TEXT_PATTERN.into());
                }
                let open = map.get("additionalProperties").is_some_and(|a| a != &Json::Bool(false));
                if open && !map.contains_key("propertyNames") {
                    map.insert("propertyNames".into(), serde_json::json!({"pattern": TEXT_PATTERN}));
                }
                map.values_mut().for_each(narrow);
            }
            Json::Array(items) => items.iter_mut().for_each(narrow),
            _ => {}
        }
    }
    /// The names of the component schemas `schema` refers to.
    fn refers_to(schema: &Json, found: &mut Vec<String>) {
        match schema {
            Json::Object(map) => {
                if let Some(name) = map.get("$ref").and_then(Json::as_str).and_then(|r| r.strip_prefix(COMPONENT)) {
                    found.push(name.to_owned());
                }
                map.values().for_each(|value| refers_to(value, found));
            }
            Json::Array(items) => items.iter().for_each(|item| refers_to(item, found)),
            _ => {}
        }
    }
    const COMPONENT: &str = "#/components/schemas/";
    let mut sent = Vec::new();
    if let Some(paths) = document.get_mut("paths").and_then(Json::as_object_mut) {
        for (path, operations) in paths.iter_mut() {
            let prefixed = path.starts_with("/new/v2.0/") || path.starts_with("/v2.0/");
            for operation in operations.as_object_mut().into_iter().flat_map(|ops| ops.values_mut()) {
                if let Some(body) = operation.get_mut("requestBody") {
                    refers_to(body, &mut sent);
                    narrow(body);
                }
            }
            let operations = operations.as_object_mut().into_iter().flat_map(|ops| ops.values_mut());
            let parameters =
                operations.filter_map(|op| op.get_mut("parameters").and_then(Json::as_array_mut)).flatten();
            for parameter in parameters {
                let name = parameter["name"].as_str().unwrap_or_default().to_owned();
                let in_path = parameter["in"] == "path";
                let Some(schema) = parameter.get_mut("schema").and_then(Json::as_object_mut) else { continue };
                if prefixed && ID_PARAMETERS.contains(&name.as_str()) {
                    schema.insert("pattern".into(), ID_PATTERN.into());
                } else if name == "limit" {
                    schema.insert("minimum".into(), 1.into());
                    schema.insert("maximum".into(), 100.into());
                } else if in_path && schema.get("type").is_some_and(|t| t == "string") {
                    schema.insert("minLength".into(), 1.into());
                }
                narrow(parameter);
            }
        }
    }
    if let Some(schemas) = document.pointer_mut("/components/schemas").and_then(Json::as_object_mut) {
        schemas.insert(JSON_VALUE.into(), json_value_schema());
        // Role lists name roles of their kind (at least one for a member).
        let roles = [
            ("UserIn", parley_core::identity::ORG_ROLE_NAMES, 0),
            ("MemberIn", parley_core::identity::PROJECT_ROLE_NAMES, 1),
        ];
        for (body, names, fewest) in roles {
            if let Some(list) = schemas.get_mut(body).and_then(|s| s.pointer_mut("/properties/roles")) {
                let names: Vec<&str> = names.split(", ").collect();
                list["items"] = serde_json::json!({"type": "string", "enum": names});
                list["minItems"] = fewest.into();
            }
        }
        // The schemas request bodies use, and those they use in turn.
        let mut seen = std::collections::BTreeSet::new();
        while let Some(name) = sent.pop() {
            if seen.insert(name.clone())
                && let Some(schema) = schemas.get_mut(&name)
            {
                refers_to(schema, &mut sent);
                narrow(schema);
            }
        }
    }
}

/// See [`finish`].
fn represented_as_hal(document: &mut Json) {
    let mut hal_pages = std::collections::BTreeSet::new();
    let Some(paths) = document.get_mut("paths").and_then(Json::as_object_mut) else { return };
    for (path, operations) in paths.iter_mut() {
        if !(path.starts_with("/new/v2.0/") || path.starts_with("/v2.0/")) {
            continue;
        }
        let answers = operations.as_object_mut().into_iter().flat_map(|ops| ops.values_mut());
        let answers = answers.filter_map(|op| op.get_mut("responses").and_then(Json::as_object_mut));
        for (status, answer) in answers.flat_map(|responses| responses.iter_mut()) {
            let Some(content) = answer.get_mut("content").and_then(Json::as_object_mut) else { continue };
            let Some(json) = content.get("application/json").filter(|_| status.starts_with('2')).cloned() else {
                continue;
            };
            let hal = match json.pointer("/schema/$ref").and_then(Json::as_str) {
                Some(page) if page.starts_with("#/components/schemas/Page_") => {
                    let name = page.trim_start_matches("#/components/schemas/").to_owned();
                    let hal = format!("Hal{name}");
                    hal_pages.insert((name, hal.clone()));
                    serde_json::json!({"schema": {"$ref": format!("#/components/schemas/{hal}")}})
                }
                _ => json,
            };
            content.insert("application/hal+json".into(), hal);
        }
    }
    let Some(schemas) = document.pointer_mut("/components/schemas").and_then(Json::as_object_mut) else { return };
    for (page, hal) in hal_pages {
        let Some(Json::Object(page)) = schemas.get(&page).cloned() else { continue };
        let mut properties = page.get("properties").and_then(Json::as_object).cloned().unwrap_or_default();
        let items = properties.remove("items").unwrap_or(Json::Null);
        properties.insert(
            "_embedded".into(),
            serde_json::json!({"type": "object", "required": ["items"], "properties": {"items": items}}),
        );
        properties.insert("_links".into(), serde_json::json!({"type": "object"}));
        let schema = serde_json::json!({
            "type": "object",
            "description": "A page of a collection as HAL writes it: the items under `_embedded.items`, links in `_links`.",
            "required": ["_embedded", "total", "_links"],
            "properties": properties,
        });
        schemas.insert(hal, schema);
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
