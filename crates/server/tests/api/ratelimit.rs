//! Rate limits (docs/contract/rest.md §9): per credential, per client address without one; 429 with
//! `Retry-After` and the problem body.

use reqwest::{Method, StatusCode};

use crate::helpers::{Engine, assert_problem, header, spawn_app_with};

const PATH: &str = "/new/v2.0/projects";

#[tokio::test]
async fn each_credential_has_its_own_budget() {
    let app = spawn_app_with(Engine::Sqlite, |config| config.rate_limit_per_minute = 3).await;
    let other = app.user("").await;
    for _ in 0..3 {
        assert_eq!(app.get(PATH).send().await.unwrap().status(), StatusCode::OK);
    }
    let response = app.get(PATH).send().await.unwrap();
    let retry = header(&response, "retry-after").expect("a Retry-After header");
    let seconds: u64 = retry.parse().expect("whole seconds");
    assert!((1..=60).contains(&seconds), "{retry}");
    let body = assert_problem(response, 429, 429, PATH).await;
    assert!(body["detail"].as_str().unwrap().contains("Too many requests"), "{body}");

    // The same key sent another way is the same credential.
    let by_query = app.anonymous(Method::GET, &format!("{PATH}?api_key={}", app.api_key)).send().await.unwrap();
    assert_eq!(by_query.status(), StatusCode::TOO_MANY_REQUESTS);
    // Another user's key is not affected, and health probes are never counted.
    assert_eq!(app.with_key(Method::GET, PATH, &other.api_key).send().await.unwrap().status(), StatusCode::OK);
    for _ in 0..5 {
        assert_eq!(app.anonymous(Method::GET, "/health/live").send().await.unwrap().status(), StatusCode::OK);
    }
}

#[tokio::test]
async fn requests_without_credentials_are_limited_by_address() {
    let app = spawn_app_with(Engine::Sqlite, |config| config.rate_limit_per_minute = 2).await;
    for _ in 0..2 {
        let response = app.token_request(&[("grant_type", "password"), ("client_id", "default")]).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    }
    let response = app.token_request(&[("grant_type", "password"), ("client_id", "default")]).await;
    assert!(header(&response, "retry-after").is_some());
    assert_problem(response, 429, 429, "/auth/oauth2/token").await;
    assert_eq!(app.get(PATH).send().await.unwrap().status(), StatusCode::OK, "a credential has its own budget");
}

#[tokio::test]
async fn zero_turns_limits_off() {
    let app = spawn_app_with(Engine::Sqlite, |config| config.rate_limit_per_minute = 0).await;
    for _ in 0..50 {
        assert_eq!(app.get(PATH).send().await.unwrap().status(), StatusCode::OK);
    }
}
