//! The OpenAPI document and the router agree: every operation the document lists is routed,
//! under both prefixes, and every method the router takes on a documented path is documented.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::Value as Json;

use crate::helpers::spawn_app;

/// A well-formed id that names nothing, for the path parameters.
const UNKNOWN_ID: &str = "0123456789abcdef01234567";

/// The documented paths with their methods, in upper case.
async fn documented(app: &crate::helpers::TestApp) -> Vec<(String, BTreeSet<String>)> {
    let document: Json = app.get("/openapi.json").send().await.unwrap().json().await.unwrap();
    document["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .map(|(path, item)| {
            let methods = item.as_object().unwrap().keys().filter(|k| is_method(k)).map(|k| k.to_uppercase());
            (path.clone(), methods.collect())
        })
        .collect()
}

fn is_method(key: &str) -> bool {
    ["get", "post", "put", "patch", "delete", "head", "options", "trace"].contains(&key)
}

/// `path` with every `{parameter}` replaced by an unknown id.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|segment| if segment.starts_with('{') { UNKNOWN_ID } else { segment })
        .collect::<Vec<_>>()
        .join("/")
}

/// The addresses a documented path answers at: itself, and its `/v2.0` copy.
fn addresses(path: &str) -> Vec<String> {
    let concrete = concrete(path);
    match concrete.strip_prefix("/new") {
        Some(old) => vec![concrete.clone(), old.to_owned()],
        None => vec![concrete],
    }
}

#[tokio::test]
async fn every_documented_operation_is_routed_under_both_prefixes() {
    let app = spawn_app().await;
    let paths = documented(&app).await;
    assert!(paths.len() >= 17, "{paths:?}");
    for (path, methods) in &paths {
        for address in addresses(path) {
            for method in methods {
                let response =
                    app.request(Method::from_bytes(method.as_bytes()).unwrap(), &address).send().await.unwrap();
                let status = response.status().as_u16();
                let body: Json = response.json().await.unwrap_or_default();
                assert_ne!(status, 405, "{method} {address} is documented but not routed");
                assert_ne!(
                    body["detail"], "No resource at this address.",
                    "{method} {address} is documented but not routed"
                );
            }
        }
    }
}

#[tokio::test]
async fn every_method_routed_on_a_documented_path_is_documented() {
    let app = spawn_app().await;
    for (path, methods) in documented(&app).await {
        for address in addresses(&path) {
            let response = app.request(Method::PUT, &address).send().await.unwrap();
            assert_eq!(response.status().as_u16(), 405, "PUT {address}");
            let allow = response.headers().get("allow").expect("an Allow header").to_str().unwrap();
            let routed: BTreeSet<String> =
                allow.split(',').map(|m| m.trim().to_owned()).filter(|m| m != "HEAD").collect();
            assert_eq!(routed, methods, "{address}: routed {allow}, documented {methods:?}");
        }
    }
}

#[tokio::test]
async fn problems_and_list_shapes_are_documented_by_reference() {
    let app = spawn_app().await;
    let document: Json = app.get("/openapi.json").send().await.unwrap().json().await.unwrap();
    assert!(document["components"]["schemas"]["Problem"].is_object(), "{}", document["components"]);
    let create = &document["paths"]["/new/v2.0/users"]["post"]["responses"];
    for status in ["201", "400", "401", "403", "409", "413", "415"] {
        assert!(create[status].is_object(), "POST /users lacks {status}: {create}");
    }
    assert_eq!(
        create["400"]["content"]["application/problem+json"]["schema"]["$ref"], "#/components/schemas/Problem",
        "{create}"
    );
    let list = &document["paths"]["/new/v2.0/users"]["get"]["responses"]["200"];
    assert_eq!(
        list["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/Page_UserView",
        "the list shape is documented: {list}"
    );
}
