//! The read-only OData v4 endpoint (docs/contract/odata.md): the service document, the `$metadata` document,
//! and each entity set with its `$count`, under `/v2.4` and, with `_id` for the key, `/v2.3`.
//!
//! A request's options are parsed into a typed query (parley-odata) before anything else; the
//! store runs it for the projects the caller may read; this module only reads the request and
//! writes the answer. Every failure under these routes is written as an OData error body.

mod answer;
mod batch;

use std::sync::LazyLock;

use axum::Extension;
use axum::Router;
use axum::extract::{OriginalUri, Path, Request, State};
use axum::http::header::{CONTENT_TYPE, LINK};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use parley_core::field::FieldType;
use parley_core::{Caller, Value};
use parley_odata::csdl::{metadata_document, metadata_json};
use parley_odata::{EntityType, IdName, Operand, Query, parse_query, skiptoken, system_option};
use parley_store::ODataRead;
use serde_json::{Map, Value as Json, json};

use self::answer::{Representation, context_url, csv_response, preferences};
use crate::auth::form_decoded;
use crate::problem::{ApiError, ErrorCode};
use crate::state::AppState;

/// The most rows one answer holds; `Prefer: odata.maxpagesize` may lower it.
pub const MAX_PAGE_SIZE: u64 = 10_000;

/// One OData service: its root path, its entity types, and their metadata document.
pub struct Service {
    pub root: &'static str,
    pub entities: Vec<EntityType>,
    /// `$metadata` as CSDL XML and as CSDL JSON.
    metadata: String,
    metadata_json: Vec<u8>,
}

impl Service {
    fn new(root: &'static str, entities: Vec<EntityType>) -> Service {
        let all: Vec<&EntityType> = entities.iter().collect();
        let metadata = metadata_document(&all);
        let metadata_json = serde_json::to_vec(&metadata_json(&all)).unwrap_or_default();
        Service { root, entities, metadata, metadata_json }
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
        .route(&format!("{root}/$batch"), axum::routing::post(batch::batch))
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

/// Refuses every method but GET (and HEAD), and a client that takes only OData versions below
/// 4.0, before anything else; adds `OData-Version` to every answer. (The renderer writes every
/// failure under these paths as an OData error.)
async fn odata_responses(request: Request, next: Next) -> Response {
    let max_version =
        request.headers().get("odata-maxversion").map(|v| v.to_str().unwrap_or_default().trim().to_owned());
    let below_four = max_version.as_deref().is_some_and(|v| {
        let major = v.split('.').next().unwrap_or_default();
        major.parse::<u32>().map_or(true, |major| major < 4)
    });
    let mut response = if below_four {
        ApiError::new(
            ErrorCode::Invalid,
            format!(
                "OData-MaxVersion is {}, but this service speaks OData 4.0 only; send OData-MaxVersion: 4.0 \
                 (or leave the header out).",
                max_version.unwrap_or_default()
            ),
        )
        .into_response()
    } else if matches!(*request.method(), Method::GET | Method::HEAD)
        || (request.method() == Method::POST && request.uri().path().ends_with("/$batch"))
    {
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

/// `GET /v2.4/`: the entity sets of the service. Public: it describes no data.
async fn service_document(State(state): State<AppState>, Extension(service): Extension<&'static Service>) -> Response {
    let url = service_url(&state, service.root);
    let sets: Vec<Json> =
        service.entities.iter().map(|e| json!({"name": e.set, "kind": "EntitySet", "url": e.set})).collect();
    Representation::MINIMAL.json(StatusCode::OK, &json!({"@odata.context": format!("{url}/$metadata"), "value": sets}))
}

/// `GET /v2.4/$metadata`: the CSDL XML document, or with `$format=json` the CSDL JSON one.
/// Public, like the service document, so that clients that fetch it without the feed's query
/// string still can.
async fn metadata(Extension(service): Extension<&'static Service>, OriginalUri(uri): OriginalUri) -> Response {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(uri.query().unwrap_or_default()).unwrap_or_default();
    let format = pairs.iter().find(|(name, _)| system_option(name) == Some("$format")).map(|(_, v)| v.trim());
    let (body, content_type) = match format.map(|f| f.split(';').next().unwrap_or_default().to_ascii_lowercase()) {
        None => (service.metadata.clone().into_bytes(), "application/xml"),
        Some(f) if f == "xml" || f == "application/xml" => (service.metadata.clone().into_bytes(), "application/xml"),
        Some(f) if f == "json" || f == "application/json" => (service.metadata_json.clone(), "application/json"),
        Some(other) => {
            return ApiError::new(
                ErrorCode::Invalid,
                format!("$format={other} is not a format of $metadata; use xml or json."),
            )
            .into_response();
        }
    };
    let mut response = body.into_response();
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// What a path below the service root addresses.
enum Resource<'a> {
    Collection(&'a EntityType),
    Count(&'a EntityType),
    /// One entity by its key, or one of its properties.
    Entity(&'a EntityType, String, Option<Member>),
}

/// A property of one entity: `Analytics('…')/intent`, or with `/$value` its raw value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Member {
    property: usize,
    raw: bool,
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
    let Some((set, rest)) = path.split_once('(') else {
        return service.entity(path).map(Resource::Collection).ok_or_else(unknown);
    };
    let entity = service.entity(set).ok_or_else(unknown)?;
    // The key, bare or named as in `Analytics(id='…')`.
    let key_name = &entity.properties[entity.key].name;
    let rest = rest.strip_prefix(&format!("{key_name}=")).unwrap_or(rest);
    let (key, after) = match rest.strip_prefix('\'') {
        Some(quoted) => {
            let (key, after) = closing_quote(quoted).ok_or_else(unknown)?;
            (key, after.strip_prefix(')').ok_or_else(unknown)?)
        }
        None => {
            let (key, after) = rest.split_once(')').ok_or_else(unknown)?;
            if let Some((name, _)) = key.split_once('=') {
                return Err(ApiError::new(
                    ErrorCode::Invalid,
                    format!("'{name}' is not the key of {}; its key is {key_name}.", entity.name),
                ));
            }
            (key.to_owned(), after)
        }
    };
    let member = match after.strip_prefix('/') {
        None if after.is_empty() => None,
        None => return Err(unknown()),
        Some(member) => {
            let (name, raw) = match member.strip_suffix("/$value") {
                Some(name) => (name, true),
                None => (member, false),
            };
            let property = entity.property(name).ok_or_else(|| {
                ApiError::new(ErrorCode::NotFound, format!("'{name}' is not a property of {}.", entity.name))
            })?;
            if raw && entity.properties[property].ty == FieldType::TextList {
                return Err(ApiError::new(
                    ErrorCode::Invalid,
                    format!("'{name}' is a collection, which has no raw value; leave out /$value."),
                ));
            }
            Some(Member { property, raw })
        }
    };
    Ok(Resource::Entity(entity, key, member))
}

/// A quoted key's text up to its closing quote (`''` is a quote), and what follows.
fn closing_quote(quoted: &str) -> Option<(String, &str)> {
    let mut key = String::new();
    let mut rest = quoted;
    loop {
        let at = rest.find('\'')?;
        key.push_str(&rest[..at]);
        if rest[at + 1..].starts_with('\'') {
            key.push('\'');
            rest = &rest[at + 2..];
        } else {
            return Some((key, &rest[at + 1..]));
        }
    }
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
            let representation = Representation::of(&query, &pairs, &headers)?;
            collection(&state, &caller, entity, &query, &headers, &url, raw_query, representation).await
        }
        Resource::Count(entity) => {
            let query = parse_query(entity, &pairs)?;
            let projects = state.store.visible_project_ids(&caller).await?;
            let count = state.store.odata_count(entity, &query, &projects).await?;
            let mut response = count.to_string().into_response();
            response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain;charset=utf-8"));
            Ok(response)
        }
        Resource::Entity(entity, key, member) => {
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
            if let Some(member) = member {
                options.retain(|(name, _)| system_option(name) != Some("$select"));
                options.push(("$select".into(), entity.properties[member.property].name.clone()));
            }
            let query = parse_query(entity, &options)?;
            let representation = Representation { csv: false, ..Representation::of(&query, &options, &headers)? };
            let projects = state.store.visible_project_ids(&caller).await?;
            let mut columns = query.select.clone();
            columns.push(Operand::Property(entity.key));
            let read = ODataRead { entity, query: &query, projects: &projects, columns: &columns, limit: 1 };
            let row = state.store.odata_rows(read).await?.pop().ok_or_else(|| ApiError::not_found("entity"))?;
            let set_url = format!("{url}/{}", entity.set);
            let mut object = representation.entity(entity, &query, &columns, &row, &set_url);
            let Some(member) = member else {
                let mut body = Map::new();
                representation.context(&mut body, format!("{url}/$metadata#{}/$entity", entity.set));
                body.extend(object);
                return Ok(with_applied(
                    representation.json(StatusCode::OK, &Json::Object(body)),
                    &representation,
                    None,
                ));
            };
            // One property: its value, or nothing (204) when it is null.
            let name = &entity.properties[member.property].name;
            let value = object.remove(name).unwrap_or(Json::Null);
            if value.is_null() {
                return Ok(StatusCode::NO_CONTENT.into_response());
            }
            if member.raw {
                let text = match value {
                    Json::String(text) => text,
                    other => other.to_string(),
                };
                let mut response = text.into_response();
                response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain;charset=utf-8"));
                return Ok(response);
            }
            let mut body = Map::new();
            let quoted = key.replace('\'', "''");
            representation.context(&mut body, format!("{url}/$metadata#{}('{quoted}')/{name}", entity.set));
            body.extend(object.into_iter().filter(|(annotation, _)| annotation.starts_with(&format!("{name}@"))));
            body.insert("value".into(), value);
            Ok(representation.json(StatusCode::OK, &Json::Object(body)))
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
    representation: Representation,
) -> Result<Response, ApiError> {
    let csv = representation.csv;
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
        representation.context(&mut body, context_url(url, entity, query));
        if let Some(count) = count {
            body.insert("@odata.count".into(), Json::from(count));
        }
        let set_url = format!("{url}/{}", entity.set);
        let values: Vec<Json> = rows
            .iter()
            .map(|row| Json::Object(representation.entity(entity, query, &columns, row, &set_url)))
            .collect();
        body.insert("value".into(), Json::Array(values));
        if let Some(next) = &next {
            body.insert("@odata.nextLink".into(), Json::String(next.clone()));
        }
        representation.json(StatusCode::OK, &Json::Object(body))
    };
    if let (true, Some(next)) = (csv, &next)
        && let Ok(value) = HeaderValue::from_str(&format!("<{next}>; rel=\"next\""))
    {
        response.headers_mut().insert(LINK, value);
    }
    Ok(with_applied(response, &representation, preferred.map(|_| page)))
}

/// `Preference-Applied` naming what of `Prefer` the answer honours: the page size, and leaving
/// out nulls (not in CSV, where a null is an empty cell anyway).
fn with_applied(mut response: Response, representation: &Representation, page: Option<u64>) -> Response {
    let applied: Vec<String> = page
        .map(|page| format!("odata.maxpagesize={page}"))
        .into_iter()
        .chain(representation.applied().filter(|_| !representation.csv).map(str::to_owned))
        .collect();
    if !applied.is_empty()
        && let Ok(value) = HeaderValue::from_str(&applied.join(", "))
    {
        response.headers_mut().insert("preference-applied", value);
    }
    response
}

/// `odata.maxpagesize=n` (or `maxpagesize=n`) from the `Prefer` headers; a malformed
/// preference is ignored, as preferences may be.
fn preferred_page_size(headers: &HeaderMap) -> Option<u64> {
    preferences(headers)
        .filter(|(name, _)| name.eq_ignore_ascii_case("odata.maxpagesize") || name.eq_ignore_ascii_case("maxpagesize"))
        .find_map(|(_, value)| value.parse::<u64>().ok().filter(|n| *n > 0))
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
        assert!(matches!(resource_of(&V24, "Analytics('it''s')"), Ok(Resource::Entity(_, key, None)) if key == "it's"));
        assert!(matches!(resource_of(&V24, "Analytics(id='a)b')"), Ok(Resource::Entity(_, key, None)) if key == "a)b"));
        assert!(matches!(
            resource_of(&V24, "Analytics('k')/intent/$value"),
            Ok(Resource::Entity(_, key, Some(Member { raw: true, .. }))) if key == "k"
        ));
        assert!(matches!(
            resource_of(&V24, "Analytics('k')/intent"),
            Ok(Resource::Entity(_, _, Some(Member { raw: false, .. })))
        ));
        assert!(resource_of(&V24, "Analytics('k')/nope").is_err());
        assert!(resource_of(&V24, "Analytics('k')/trackedGoals/$value").is_err());
        assert!(resource_of(&V24, "Analytics('k')x").is_err());
        assert!(resource_of(&V24, "Analytics(_id='k')").is_err(), "the key is called id here");
        assert!(resource_of(&V24, "analytics").is_err());
        assert!(resource_of(&V24, "Analytics(x").is_err());
        assert!(resource_of(&V24, "Nope/$count").is_err());
    }
}
