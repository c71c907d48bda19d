//! Every documented route takes the query parameters its OpenAPI operation lists, and no other:
//! an unknown one (`?contact=c1` for `contactId`) would otherwise be ignored and widen the answer
//! without a word. The document is the one source of what each route takes, so the rule cannot
//! drift from what is documented. OData has its own grammar and is checked by its parser.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::{OpenApi, RefOr};

use crate::problem::ApiError;

/// The credentials a request may carry in its query on any route (docs/contract/rest.md §6).
pub const EVERYWHERE: [&str; 2] = ["api_key", "apikey"];

/// The query parameters of each documented route, by method and path as the router matches it.
#[derive(Debug, Clone, Default)]
pub struct QueryRules(Arc<HashMap<(Method, String), BTreeSet<String>>>);

impl QueryRules {
    /// The rules of every operation of `document`.
    pub fn of(document: &OpenApi) -> QueryRules {
        let mut rules = HashMap::new();
        for (path, item) in &document.paths.paths {
            let operations = [
                (Method::GET, &item.get),
                (Method::POST, &item.post),
                (Method::PUT, &item.put),
                (Method::PATCH, &item.patch),
                (Method::DELETE, &item.delete),
            ];
            for (method, operation) in operations {
                if let Some(operation) = operation {
                    rules.insert((method, path.clone()), query_parameters(operation));
                }
            }
        }
        QueryRules(Arc::new(rules))
    }

    /// The first parameter of `query` the route does not take, with what it takes; `None` when
    /// every one is known or the route is not documented. `name[]` is `name`, as the SDK sends
    /// arrays.
    fn unknown(&self, method: &Method, path: &str, query: &str) -> Option<(String, Vec<String>)> {
        // The `/v2.0` copy of the API takes what `/new/v2.0` does.
        let path = match path.strip_prefix("/v2.0/") {
            Some(rest) => format!("/new/v2.0/{rest}"),
            None => path.to_owned(),
        };
        let known = self.0.get(&(method.clone(), path))?;
        // A query that does not parse is for the route to refuse.
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).ok()?;
        pairs
            .into_iter()
            .map(|(name, _)| name)
            .find(|name| {
                let bare = name.strip_suffix("[]").unwrap_or(name);
                !known.contains(bare) && !EVERYWHERE.contains(&bare)
            })
            .map(|name| (name, known.iter().cloned().collect()))
    }
}

fn query_parameters(operation: &Operation) -> BTreeSet<String> {
    operation
        .parameters
        .iter()
        .flatten()
        .filter_map(|parameter| match parameter {
            RefOr::T(p) if p.parameter_in == ParameterIn::Query => Some(p.name.clone()),
            _ => None,
        })
        .collect()
}

/// Refuses a request to a documented route whose query names a parameter the route does not take
/// (1005, naming it and, when one is close, the one meant).
pub async fn refuse_unknown(
    axum::extract::State(rules): axum::extract::State<QueryRules>,
    request: Request,
    next: Next,
) -> Response {
    let query = request.uri().query().unwrap_or_default();
    if !query.is_empty()
        && let Some(path) = request.extensions().get::<MatchedPath>()
        && let Some((name, known)) = rules.unknown(request.method(), path.as_str(), query)
    {
        let takes = if known.is_empty() { "no query parameters".to_owned() } else { known.join(", ") };
        let text = format!("is not a query parameter of this request (it takes {takes})");
        let text = parley_core::suggest::with_suggestion(text, &name, known.iter().map(String::as_str));
        return ApiError::from(parley_core::Error::invalid(&name, text)).into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> QueryRules {
        let (_, document) = crate::app::documented();
        QueryRules::of(&document)
    }

    #[test]
    fn each_route_takes_what_its_operation_documents() {
        let rules = rules();
        let get = |path: &str, query: &str| rules.unknown(&Method::GET, path, query).map(|(name, _)| name);
        assert_eq!(get("/new/v2.0/analytics", "projectId=p&contactId=c&limit=5"), None);
        assert_eq!(get("/new/v2.0/analytics", "projectId=p&contact=c"), Some("contact".into()));
        assert_eq!(get("/v2.0/analytics", "contact=c"), Some("contact".into()), "the older prefix too");
        assert_eq!(get("/new/v2.0/conversations", "projectId=p&contactIds[]=a&contactIds=b"), None);
        assert_eq!(get("/new/v2.0/analytics", "apikey=k&projectId=p"), None, "credentials go anywhere");
        assert_eq!(get("/new/v2.0/projects/{projectId}", "verbose=1"), Some("verbose".into()));
        assert_eq!(get("/v2.4/Analytics", "whatever=1"), None, "OData is not documented here");
    }
}
