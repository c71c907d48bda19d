//! How an OData answer is written: JSON with the control information the client asked for
//! (`odata.metadata=none|minimal|full`, `Prefer: omit-values=nulls`), or CSV. The representation
//! is chosen once per request, from `$format` (which wins) and the `Accept` and `Prefer` headers.

use axum::http::header::{ACCEPT, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use parley_core::Value;
use parley_core::field::FieldType;
use parley_core::value::format_time;
use parley_odata::{EdmType, EntityType, Format, Operand, Query, system_option};
use serde_json::{Map, Value as Json};

use crate::negotiate::{self, ODataFormat};
use crate::problem::{ApiError, ErrorCode};

/// How much control information a JSON answer carries (OData JSON format, section 3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metadata {
    /// Only `@odata.count` and `@odata.nextLink`.
    None,
    /// Also `@odata.context` (the default).
    Minimal,
    /// Also each entity's `@odata.id` and `@odata.type`, and the type of each property whose
    /// JSON does not tell it.
    Full,
}

impl Metadata {
    fn parse(text: &str) -> Result<Metadata, ApiError> {
        match text.trim().to_ascii_lowercase().as_str() {
            "none" => Ok(Metadata::None),
            "minimal" => Ok(Metadata::Minimal),
            "full" => Ok(Metadata::Full),
            other => Err(ApiError::new(
                ErrorCode::Invalid,
                format!("odata.metadata={other} is not a metadata level; use none, minimal or full."),
            )),
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Metadata::None => "application/json;odata.metadata=none",
            Metadata::Minimal => "application/json;odata.metadata=minimal",
            Metadata::Full => "application/json;odata.metadata=full",
        }
    }
}

/// What the client asked an answer to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Representation {
    pub csv: bool,
    pub metadata: Metadata,
    /// `Prefer: omit-values=nulls`: properties whose value is null are left out of entities.
    pub omit_nulls: bool,
}

impl Representation {
    /// The JSON every answer of the endpoint is written as when nothing else is asked for.
    pub const MINIMAL: Representation = Representation { csv: false, metadata: Metadata::Minimal, omit_nulls: false };

    /// The representation `pairs` (the query options; `$format` wins) and `headers` ask for; 406
    /// when `Accept` takes neither JSON nor CSV (Atom and XML are not offered).
    pub fn of(query: &Query, pairs: &[(String, String)], headers: &HeaderMap) -> Result<Representation, ApiError> {
        let accept = headers.get(ACCEPT).and_then(|v| v.to_str().ok());
        let format = pairs.iter().find(|(name, _)| system_option(name) == Some("$format")).map(|(_, v)| v.as_str());
        let (csv, parameters) = match format {
            Some(text) => (query.format == Format::Csv, text.split_once(';').map(|(_, p)| p)),
            None => match negotiate::odata_format(accept)? {
                ODataFormat::Csv => (true, None),
                ODataFormat::Json => (false, negotiate::json_parameters(accept)),
            },
        };
        let metadata = parameters
            .into_iter()
            .flat_map(|p| p.split(';'))
            .filter_map(|p| p.split_once('='))
            .find(|(name, _)| name.trim().eq_ignore_ascii_case("odata.metadata"))
            .map_or(Ok(Metadata::Minimal), |(_, value)| Metadata::parse(value))?;
        let omit_nulls = preferences(headers)
            .any(|(name, value)| name.eq_ignore_ascii_case("omit-values") && value.eq_ignore_ascii_case("nulls"));
        Ok(Representation { csv, metadata, omit_nulls })
    }

    /// A JSON answer with this representation's content type.
    pub fn json(&self, status: StatusCode, body: &Json) -> Response {
        let mut response = (status, serde_json::to_vec(body).unwrap_or_default()).into_response();
        response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(self.metadata.content_type()));
        response
    }

    /// `@odata.context`, when the metadata level includes it.
    pub fn context(&self, body: &mut Map<String, Json>, url: String) {
        if self.metadata != Metadata::None {
            body.insert("@odata.context".into(), Json::String(url));
        }
    }

    /// The `Preference-Applied` value for what of `Prefer` was honoured here, if anything.
    pub fn applied(&self) -> Option<&'static str> {
        self.omit_nulls.then_some("omit-values=nulls")
    }

    /// One row as an entity: its selected columns of `columns` (the columns read, in the order
    /// of `row`), and, with full metadata, its id (an address of `set_url`) and type.
    pub fn entity(
        &self,
        entity: &EntityType,
        query: &Query,
        columns: &[Operand],
        row: &[Value],
        set_url: &str,
    ) -> Map<String, Json> {
        let mut object = Map::new();
        if self.metadata == Metadata::Full {
            let key = columns.iter().position(|c| *c == Operand::Property(entity.key)).map(|i| &row[i]);
            let id = match (key, &query.aggregation) {
                (Some(Value::Text(key)), None) => Json::String(format!("{set_url}('{}')", key.replace('\'', "''"))),
                _ => Json::Null,
            };
            object.insert("@odata.id".into(), id);
            object.insert("@odata.type".into(), Json::String(format!("#{}", entity.qualified_name())));
        }
        // A row of concat(…) has the properties of its own sequence only.
        let sequence = columns.iter().position(|c| *c == Operand::Branch).and_then(|i| match row[i] {
            Value::Integer(b) => usize::try_from(b).ok(),
            _ => None,
        });
        for (&operand, value) in query.select.iter().zip(row) {
            if sequence.is_some_and(|b| !query.sequence_has(b, operand)) {
                continue;
            }
            let ty = query.ty(entity, operand);
            let json = odata_json(value, ty);
            if self.omit_nulls && json.is_null() {
                continue;
            }
            let name = query.name(entity, operand);
            if self.metadata == Metadata::Full
                && let Some(annotation) = type_annotation(EdmType::of(ty))
            {
                object.insert(format!("{name}@odata.type"), Json::String(annotation.into()));
            }
            object.insert(name.to_owned(), json);
        }
        object
    }
}

/// The `@odata.type` of a property whose JSON value does not tell its type (strings, booleans
/// and doubles do).
fn type_annotation(edm: EdmType) -> Option<&'static str> {
    match edm {
        EdmType::Int64 => Some("#Int64"),
        EdmType::DateTimeOffset => Some("#DateTimeOffset"),
        EdmType::StringCollection => Some("#Collection(String)"),
        EdmType::String | EdmType::Double | EdmType::Boolean => None,
    }
}

/// The preferences of the `Prefer` headers, as names and values (a value-less one has "").
pub fn preferences(headers: &HeaderMap) -> impl Iterator<Item = (&str, &str)> {
    headers.get_all("prefer").iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).map(|preference| {
        let (name, value) = preference.split_once('=').unwrap_or((preference, ""));
        (name.trim(), value.trim().trim_matches('"'))
    })
}

/// `<root>/$metadata#Analytics`, naming the properties when `$select` or `$apply` chose them.
pub fn context_url(url: &str, entity: &EntityType, query: &Query) -> String {
    if query.selected || query.aggregation.is_some() {
        let names: Vec<&str> = query.select.iter().map(|&o| query.name(entity, o)).collect();
        format!("{url}/$metadata#{}({})", entity.set, names.join(","))
    } else {
        format!("{url}/$metadata#{}", entity.set)
    }
}

/// A value as OData JSON shows it: times in UTC ISO 8601, JSON values as their text, a missing
/// list as an empty one (collections are never null).
fn odata_json(value: &Value, ty: FieldType) -> Json {
    match (value, ty) {
        (Value::Null, FieldType::TextList) => Json::Array(Vec::new()),
        (Value::Time(t), _) => Json::String(format_time(*t)),
        (Value::Json(json), _) => Json::String(json.to_string()),
        (other, _) => other.to_json(),
    }
}

/// The page as CSV: a header row of the selected names, then one row per entity.
pub fn csv_response(entity: &EntityType, query: &Query, rows: &[Vec<Value>]) -> Response {
    let mut writer = csv::WriterBuilder::new().terminator(csv::Terminator::CRLF).from_writer(Vec::new());
    let names: Vec<&str> = query.select.iter().map(|&o| query.name(entity, o)).collect();
    let _ = writer.write_record(&names);
    for row in rows {
        let cells =
            query.select.iter().zip(row).map(|(&operand, value)| match odata_json(value, query.ty(entity, operand)) {
                Json::Null => String::new(),
                Json::String(text) => text,
                other => other.to_string(),
            });
        let _ = writer.write_record(cells);
    }
    let mut response = writer.into_inner().unwrap_or_default().into_response();
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
    response
}
