//! The read-only OData v4 endpoint (docs/contract/odata.md): the service document, the `$metadata` document,
//! and each entity set with its `$count`, under `/v2.4` and, with `_id` for the key, `/v2.3`.
//!
//! A request's options are parsed into a typed query (parley-odata) before anything else; the
//! store runs it for the projects the caller may read; this module only reads the request and
//! writes the answer. Every failure under these routes is written as an OData error body.

use std::sync::LazyLock;

use axum::Extension;
use axum::Router;
use axum::extract::{OriginalUri, Path, Request, State};
use axum::http::header::{ACCEPT, CONTENT_TYPE, LINK};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use parley_core::field::FieldType;
use parley_core::value::format_time;
use parley_core::{Caller, Value};
use parley_odata::csdl::metadata_document;
use parley_odata::{EntityType, Format, IdName, Query, parse_query, skiptoken, system_option};
use parley_store::ODataRead;
use serde_json::{Map, Value as Json, json};

use crate::auth::form_decoded;
use crate::problem::{ApiError, ErrorCode};
use crate::state::AppState;

/// The most rows one answer holds; `Prefer: odata.maxpagesize` may lower it.
pub const MAX_PAGE_SIZE: u64 = 10_000;

/// One OData service: its root path, its entity types, and their metadata document.
pub struct Service {
    pub root: &'static str,
    pub entities: Vec<EntityType>,
    metadata: String,
}

impl Service {
    fn new(root: &'static str, entities: Vec<EntityType>) -> Service {
        let metadata = metadata_document(&entities.iter().collect::<Vec<_>>());
        Service { root, entities, metadata }
    }

    fn entity(&self, set: &str) -> Option<&EntityType> {
        self.entities.iter().find(|e| e.set == set)
    }
}

/// The current service.
pub static V24: LazyLock<Service> = LazyLock::new(|| Service::new("/v2.4", EntityType::all(IdName::Id)));
/// The same data for older feeds, which call the key `_id`.
pub static V23: LazyLock<Service> = LazyLock::new(|| Service::new("/v2.3", EntityType::all(IdName::UnderscoreId)));

/// The routes of both services.
pub fn routes() -> Router<AppState> {
    Router::new().merge(service_routes(&V24)).merge(service_routes(&V23))
}

fn service_routes(service: &'static Service) -> Router<AppState> {
    let root = service.root;
    Router::new()
        .route(root, get(service_document))
        .route(&format!("{root}/"), get(service_document))
        .route(&format!("{root}/$metadata"), get(metadata))
        .route(&format!("{root}/{{*path}}"), get(resource))
        .layer(Extension(service))
        .layer(axum::middleware::from_fn(odata_responses))
}

/// Whether `path` belongs to one of the OData services, whose failures are OData errors.
pub fn serves(path: &str) -> bool {
    [&*V24, &*V23]
        .iter()
        .any(|service| path.strip_prefix(service.root).is_some_and(|rest| rest.is_empty() || rest.starts_with('/')))
}

/// Refuses every method but GET (and HEAD) before anything else, and adds `OData-Version` to
/// every answer. (The renderer writes every failure under these paths as an OData error.)
async fn odata_responses(request: Request, next: Next) -> Response {
    let mut response = if matches!(*request.method(), Method::GET | Method::HEAD) {
        next.run(request).await
    } else {
        let mut error =
            ApiError::new(ErrorCode::MethodNotAllowed, "The OData endpoint is read-only: only GET is allowed.");
        error.headers.push((header::ALLOW, HeaderValue::from_static("GET, HEAD")));
        error.into_response()
    };
    response.headers_mut().insert("odata-version", HeaderValue::from_static("4.0"));
    response
}

/// The absolute address of the service root: from the node's `public_url`, never from what a
/// request says about itself (a `Host` header copied into links would let a client point them
/// anywhere).
fn service_url(state: &AppState, root: &str) -> String {
    format!("{}{root}", state.public_url)
}

const JSON_MINIMAL: &str = "application/json;odata.metadata=minimal";

fn json_response(status: StatusCode, body: &Json) -> Response {
    let mut response = (status, serde_json::to_vec(body).unwrap_or_default()).into_response();
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(JSON_MINIMAL));
    response
}

/// `GET /v2.4/`: the entity sets of the service. Public: it describes no data.
async fn service_document(State(state): State<AppState>, Extension(service): Extension<&'static Service>) -> Response {
    let url = service_url(&state, service.root);
    let sets: Vec<Json> =
        service.entities.iter().map(|e| json!({"name": e.set, "kind": "EntitySet", "url": e.set})).collect();
    json_response(StatusCode::OK, &json!({"@odata.context": format!("{url}/$metadata"), "value": sets}))
}

/// `GET /v2.4/$metadata`: the CSDL XML document. Public, like the service document, so that
/// clients that fetch it without the feed's query string still can.
async fn metadata(Extension(service): Extension<&'static Service>) -> Response {
    let mut response = service.metadata.clone().into_response();
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/xml"));
    response
}

/// What a path below the service root addresses.
enum Resource<'a> {
    Collection(&'a EntityType),
    Count(&'a EntityType),
    Entity(&'a EntityType, String),
}

fn resource_of<'a>(service: &'a Service, path: &str) -> Result<Resource<'a>, ApiError> {
    let unknown = || {
        let sets: Vec<&str> = service.entities.iter().map(|e| e.set).collect();
        ApiError::new(
            ErrorCode::NotFound,
            format!(
                "No resource at this address. The entity sets are: {} (names are case-sensitive).",
                sets.join(", ")
            ),
        )
    };
    let path = path.strip_suffix('/').unwrap_or(path);
    if let Some(set) = path.strip_suffix("/$count") {
        return service.entity(set).map(Resource::Count).ok_or_else(unknown);
    }
    if let Some((set, rest)) = path.split_once('(') {
        let entity = service.entity(set).ok_or_else(unknown)?;
        let inner = rest.strip_suffix(')').ok_or_else(unknown)?;
        let key = inner
            .strip_prefix('\'')
            .and_then(|k| k.strip_suffix('\''))
            .map_or_else(|| inner.to_owned(), |k| k.replace("''", "'"));
        return Ok(Resource::Entity(entity, key));
    }
    service.entity(path).map(Resource::Collection).ok_or_else(unknown)
}

/// `GET /v2.4/{path}`: an entity set, its `$count`, or one entity by key.
async fn resource(
    State(state): State<AppState>,
    Extension(service): Extension<&'static Service>,
    caller: Caller,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    Path(path): Path<String>,
) -> Result<Response, ApiError> {
    let resource = resource_of(service, &path)?;
    if !caller.may_use_odata() {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "Reading through OData needs the organisation role 'odata' or 'admin'.",
        ));
    }
    let raw_query = uri.query().unwrap_or_default();
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw_query)
        .map_err(|e| ApiError::new(ErrorCode::Invalid, format!("The query string is not valid: {e}.")))?;
    let url = service_url(&state, service.root);
    match resource {
        Resource::Collection(entity) => {
            let query = parse_query(entity, &pairs)?;
            let format_given = pairs.iter().any(|(name, _)| system_option(name) == Some("$format"));
            let csv = query.format == Format::Csv || (!format_given && accepts_only_csv(&headers));
            collection(&state, &caller, entity, &query, &headers, &url, raw_query, csv).await
        }
        Resource::Count(entity) => {
            let query = parse_query(entity, &pairs)?;
            let projects = state.store.visible_project_ids(&caller).await?;
            let count = state.store.odata_count(entity, &query, &projects).await?;
            let mut response = count.to_string().into_response();
            response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain;charset=utf-8"));
            Ok(response)
        }
        Resource::Entity(entity, key) => {
            let mut options: Vec<(String, String)> = Vec::new();
            for (name, value) in &pairs {
                match system_option(name) {
                    Some("$select" | "$format" | "$expand") => options.push((name.clone(), value.clone())),
                    Some(_) => {
                        return Err(ApiError::new(
                            ErrorCode::Invalid,
                            format!("The query option {name} does not apply to a single entity."),
                        ));
                    }
                    None if name.starts_with('$') => {
                        return Err(ApiError::new(ErrorCode::Invalid, format!("{name} is not a query option.")));
                    }
                    None => {}
                }
            }
            let key_name = &entity.properties[entity.key].name;
            options.push(("$filter".into(), format!("{key_name} eq '{}'", key.replace('\'', "''"))));
            let query = parse_query(entity, &options)?;
            let projects = state.store.visible_project_ids(&caller).await?;
            let read = ODataRead { entity, query: &query, projects: &projects, columns: &query.select, limit: 1 };
            let row = state.store.odata_rows(read).await?.pop().ok_or_else(|| ApiError::not_found("entity"))?;
            let mut body = Map::new();
            body.insert("@odata.context".into(), Json::String(format!("{url}/$metadata#{}/$entity", entity.set)));
            body.extend(row_object(entity, &query, &row));
            Ok(json_response(StatusCode::OK, &Json::Object(body)))
        }
    }
}

/// One page of an entity set, with `@odata.count` and `@odata.nextLink` where they apply; as
/// CSV, the next page's link is in a `Link` header.
#[allow(clippy::too_many_arguments)]
async fn collection(
    state: &AppState,
    caller: &Caller,
    entity: &EntityType,
    query: &Query,
    headers: &HeaderMap,
    url: &str,
    raw_query: &str,
    csv: bool,
) -> Result<Response, ApiError> {
    let preferred = preferred_page_size(headers);
    let page = preferred.map_or(MAX_PAGE_SIZE, |n| n.min(MAX_PAGE_SIZE));
    // $top no larger than a page ends the answer here; otherwise one more row than a page
    // tells whether a next page exists.
    let (take, may_continue) = match query.top {
        Some(top) if top <= page => (top, false),
        _ => (page, true),
    };
    let mut columns = query.select.clone();
    for key in &query.order {
        if !columns.contains(&key.operand) {
            columns.push(key.operand);
        }
    }
    let projects = state.store.visible_project_ids(caller).await?;
    let limit = if may_continue { take + 1 } else { take };
    let read = ODataRead { entity, query, projects: &projects, columns: &columns, limit };
    let mut rows = state.store.odata_rows(read).await?;
    let more = may_continue && rows.len() as u64 > take;
    rows.truncate(take as usize);
    let count = if query.count { Some(state.store.odata_count(entity, query, &projects).await?) } else { None };
    let next = match rows.last() {
        Some(last) if more => {
            let values: Vec<Value> = query
                .order
                .iter()
                .map(|key| last[columns.iter().position(|c| *c == key.operand).unwrap_or_default()].clone())
                .collect();
            let token = skiptoken::encode(query, entity, &values);
            Some(next_link(&format!("{url}/{}", entity.set), raw_query, &token, query.top.map(|t| t - take)))
        }
        _ => None,
    };

    let mut response = if csv {
        csv_response(entity, query, &rows)
    } else {
        let mut body = Map::new();
        body.insert("@odata.context".into(), Json::String(context_url(url, entity, query)));
        if let Some(count) = count {
            body.insert("@odata.count".into(), Json::from(count));
        }
        let values: Vec<Json> = rows.iter().map(|row| Json::Object(row_object(entity, query, row))).collect();
        body.insert("value".into(), Json::Array(values));
        if let Some(next) = &next {
            body.insert("@odata.nextLink".into(), Json::String(next.clone()));
        }
        json_response(StatusCode::OK, &Json::Object(body))
    };
    if let (true, Some(next)) = (csv, &next)
        && let Ok(value) = HeaderValue::from_str(&format!("<{next}>; rel=\"next\""))
    {
        response.headers_mut().insert(LINK, value);
    }
    if preferred.is_some()
        && let Ok(value) = HeaderValue::from_str(&format!("odata.maxpagesize={page}"))
    {
        response.headers_mut().insert("preference-applied", value);
    }
    Ok(response)
}

/// `odata.maxpagesize=n` (or `maxpagesize=n`) from the `Prefer` headers; a malformed
/// preference is ignored, as preferences may be.
fn preferred_page_size(headers: &HeaderMap) -> Option<u64> {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|preference| {
            let (name, value) = preference.split_once('=')?;
            let name = name.trim().to_ascii_lowercase();
            (name == "odata.maxpagesize" || name == "maxpagesize").then_some(())?;
            value.trim().trim_matches('"').parse::<u64>().ok().filter(|n| *n > 0)
        })
        .next()
}

/// Whether `Accept` asks for CSV and neither JSON nor anything.
fn accepts_only_csv(headers: &HeaderMap) -> bool {
    let accept = headers.get(ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or_default().to_ascii_lowercase();
    accept.contains("text/csv") && !accept.contains("json") && !accept.contains("*/*")
}

/// The link to the next page: the request's own options, without `$skip` (applied once
/// already) and with `$top` lowered by what was sent, plus the skip token. Other parameters,
/// such as an `apikey` the client put in the feed's address, are kept as sent, so that clients
/// that follow links verbatim (Power BI, Excel) can.
fn next_link(collection_url: &str, raw_query: &str, token: &str, remaining_top: Option<u64>) -> String {
    let mut parts: Vec<String> = raw_query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .filter(|pair| {
            let name = pair.split('=').next().unwrap_or_default();
            !matches!(system_option(&form_decoded(name)), Some("$skip" | "$top" | "$skiptoken"))
        })
        .map(str::to_owned)
        .collect();
    if let Some(top) = remaining_top {
        parts.push(format!("$top={top}"));
    }
    parts.push(format!("$skiptoken={token}"));
    format!("{collection_url}?{}", parts.join("&"))
}

/// `<root>/$metadata#Analytics`, naming the properties when `$select` or `$apply` chose them.
fn context_url(url: &str, entity: &EntityType, query: &Query) -> String {
    if query.selected || query.aggregation.is_some() {
        let names: Vec<&str> = query.select.iter().map(|&o| query.name(entity, o)).collect();
        format!("{url}/$metadata#{}({})", entity.set, names.join(","))
    } else {
        format!("{url}/$metadata#{}", entity.set)
    }
}

/// The selected columns of a row as a JSON object.
fn row_object(entity: &EntityType, query: &Query, row: &[Value]) -> Map<String, Json> {
    query
        .select
        .iter()
        .zip(row)
        .map(|(&operand, value)| (query.name(entity, operand).to_owned(), odata_json(value, query.ty(entity, operand))))
        .collect()
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
fn csv_response(entity: &EntityType, query: &Query, rows: &[Vec<Value>]) -> Response {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_links_keep_options_and_credentials_and_replace_paging() {
        let link = next_link(
            "http://h/v2.4/Analytics",
            "%24filter=intent%20eq%20%27x%27&apikey=k&%24skip=5&top=25&$skiptoken=old",
            "TOKEN",
            Some(15),
        );
        assert_eq!(link, "http://h/v2.4/Analytics?%24filter=intent%20eq%20%27x%27&apikey=k&$top=15&$skiptoken=TOKEN");
    }

    #[test]
    fn page_size_preferences_are_read_leniently() {
        let mut headers = HeaderMap::new();
        headers.append("prefer", HeaderValue::from_static("return=minimal, odata.maxpagesize=50"));
        assert_eq!(preferred_page_size(&headers), Some(50));
        let mut headers = HeaderMap::new();
        headers.append("prefer", HeaderValue::from_static("odata.maxpagesize=zero"));
        headers.append("prefer", HeaderValue::from_static("maxpagesize=\"7\""));
        assert_eq!(preferred_page_size(&headers), Some(7));
        assert_eq!(preferred_page_size(&HeaderMap::new()), None);
    }

    #[test]
    fn paths_address_sets_counts_and_entities() {
        assert!(serves("/v2.4") && serves("/v2.4/") && serves("/v2.3/Analytics/$count"));
        assert!(!serves("/v2.40/Analytics") && !serves("/v2.0/analytics") && !serves("/new/v2.0/analytics"));
        assert!(matches!(resource_of(&V24, "Analytics"), Ok(Resource::Collection(_))));
        assert!(matches!(resource_of(&V24, "Analytics/"), Ok(Resource::Collection(_))));
        assert!(matches!(resource_of(&V24, "Analytics/$count"), Ok(Resource::Count(_))));
        assert!(matches!(resource_of(&V24, "Analytics('it''s')"), Ok(Resource::Entity(_, key)) if key == "it's"));
        assert!(resource_of(&V24, "analytics").is_err());
        assert!(resource_of(&V24, "Analytics(x").is_err());
        assert!(resource_of(&V24, "Nope/$count").is_err());
    }
}
