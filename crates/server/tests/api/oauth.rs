//! OAuth2 (docs/contract/rest.md §5) and bearer access tokens (§6).

use reqwest::{Method, Response, StatusCode};
use serde_json::{Value as Json, json};

use crate::helpers::{ADMIN_EMAIL, Engine, TestApp, assert_problem, header, on_both_engines, spawn_app, spawn_app_on};

const TOKEN: &str = "/auth/oauth2/token";
const REVOKE: &str = "/auth/oauth2/revoke";
const PROJECTS: &str = "/new/v2.0/projects";

/// Checks an OAuth2 error answer (RFC 6749 §5.2) and returns its description.
async fn assert_oauth_error(response: Response, status: u16, error: &str) -> String {
    assert_eq!(response.status().as_u16(), status);
    assert!(header(&response, "content-type").unwrap_or_default().starts_with("application/json"));
    assert_eq!(header(&response, "cache-control").as_deref(), Some("no-store"));
    if status == 401 {
        assert!(header(&response, "www-authenticate").is_some_and(|v| v.starts_with("Basic")));
    }
    let body: Json = response.json().await.expect("JSON");
    assert_eq!(body["error"], error, "{body}");
    let keys: Vec<&String> = body.as_object().expect("an object").keys().collect();
    assert_eq!(keys, ["error", "error_description"], "{body}");
    body["error_description"].as_str().expect("a description").to_owned()
}

async fn projects_with(app: &TestApp, token: &str) -> Response {
    app.bearer(Method::GET, PROJECTS, token).header("Accept", "application/json").send().await.expect("an answer")
}

/// The password grant as clients of the reference product send it: a form with an empty secret
/// for the public client; they read `expires_in`.
async fn the_password_grant_gives_tokens_that_work_as_bearer(engine: Engine) {
    let app = spawn_app_on(engine).await;
    let response = app
        .raw(
            "POST",
            TOKEN,
            &[("Content-Type", "application/x-www-form-urlencoded"), ("Accept", "application/json")],
            format!(
                "grant_type=password&username={}&password={}&client_id=default&client_secret=",
                ADMIN_EMAIL.replace('@', "%40"),
                app.admin_password
            )
            .as_bytes(),
        )
        .await;
    assert_eq!(response.status, 200, "{}", String::from_utf8_lossy(&response.body));
    assert_eq!(response.header("cache-control"), Some("no-store"));
    let answer = response.json();
    assert_eq!(answer["token_type"], "Bearer");
    assert_eq!(answer["expires_in"], 900);
    let access = answer["access_token"].as_str().expect("an access token");
    assert_eq!(access.split('.').count(), 3, "a JWT");
    assert!(answer["refresh_token"].as_str().is_some_and(|t| t.len() >= 32), "{answer}");

    let response = projects_with(&app, access).await;
    assert_eq!(response.status(), StatusCode::OK);
    let created =
        app.bearer(Method::POST, PROJECTS, access).json(&json!({"name": "by token"})).send().await.expect("an answer");
    assert_eq!(created.status(), StatusCode::CREATED, "a token acts with the user's roles");

    // With the admin's own API key beside it, both name the same user.
    let both = app.get(PROJECTS).header("Authorization", format!("Bearer {access}")).send().await.expect("an answer");
    assert_eq!(both.status(), StatusCode::OK);
}

/// A refresh token works once; the new one works; the old one, presented again, revokes the
/// session, so the tokens it made stop working too.
async fn refresh_tokens_rotate_and_reuse_revokes(engine: Engine) {
    let app = spawn_app_on(engine).await;
    let first = app.sign_in(ADMIN_EMAIL, &app.admin_password).await;
    let refresh = |token: String| {
        let app = &app;
        async move {
            app.token_request(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", &token),
                ("client_id", "default"),
                ("client_secret", ""),
            ])
            .await
        }
    };
    let old = first["refresh_token"].as_str().expect("a refresh token").to_owned();
    let response = refresh(old.clone()).await;
    assert_eq!(response.status(), StatusCode::OK);
    let second: Json = response.json().await.expect("JSON");
    assert_eq!(second["expires_in"], 900);
    let new = second["refresh_token"].as_str().expect("a new refresh token").to_owned();
    assert_ne!(new, old);
    let access = second["access_token"].as_str().expect("an access token").to_owned();
    assert_eq!(projects_with(&app, &access).await.status(), StatusCode::OK);

    let description = assert_oauth_error(refresh(old).await, 400, "invalid_grant").await;
    assert!(description.contains("used before"), "{description}");
    assert_eq!(projects_with(&app, &access).await.status(), StatusCode::UNAUTHORIZED, "the session is revoked");
    assert_oauth_error(refresh(new).await, 400, "invalid_grant").await;
    assert_oauth_error(refresh("0".repeat(64)).await, 400, "invalid_grant").await;
}

/// Revoking either token ends the session; unknown tokens answer 200 too (RFC 7009).
async fn revocation_ends_the_session(engine: Engine) {
    let app = spawn_app_on(engine).await;
    for field in ["access_token", "refresh_token"] {
        let answer = app.sign_in(ADMIN_EMAIL, &app.admin_password).await;
        let access = answer["access_token"].as_str().expect("a token");
        assert_eq!(projects_with(&app, access).await.status(), StatusCode::OK);
        let token = answer[field].as_str().expect("a token");
        let response = app.anonymous(Method::POST, REVOKE).form(&[("token", token)]).send().await.expect("an answer");
        assert_eq!(response.status(), StatusCode::OK);
        let response = projects_with(&app, access).await;
        let body = assert_problem(response, 401, 401, PROJECTS).await;
        assert!(body["detail"].as_str().unwrap_or_default().contains("Authorization"), "{body}");
        let again = app
            .token_request(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", answer["refresh_token"].as_str().unwrap()),
                ("client_id", "default"),
            ])
            .await;
        assert_oauth_error(again, 400, "invalid_grant").await;
    }
    for unknown in ["never-issued", "a.b.c"] {
        let response =
            app.anonymous(Method::POST, REVOKE).json(&json!({ "token": unknown })).send().await.expect("an answer");
        assert_eq!(response.status(), StatusCode::OK, "{unknown}");
    }
    let response =
        app.anonymous(Method::POST, REVOKE).form(&[("token_type_hint", "refresh_token")]).send().await.unwrap();
    assert_oauth_error(response, 400, "invalid_request").await;
}

/// A confidential client from `parley oauth-clients create` acts as its service user, with the
/// roles it was given, and gets no refresh token.
async fn client_credentials_act_as_the_service_user(engine: Engine) {
    let app = spawn_app_on(engine).await;
    let store = app.store().await;
    let org = parley_server::admin::organisation(store.as_ref(), None).await.unwrap();
    let client = parley_server::admin::create_client(store.as_ref(), org.id, "reporting", "odata").await.unwrap();
    let response = app
        .token_request(&[
            ("grant_type", "client_credentials"),
            ("client_id", &client.client_id),
            ("client_secret", &client.client_secret),
        ])
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let answer: Json = response.json().await.unwrap();
    assert_eq!(answer["expires_in"], 900);
    assert!(answer.get("refresh_token").is_none(), "{answer}");
    let access = answer["access_token"].as_str().unwrap();
    let listed: Json = projects_with(&app, access).await.json().await.unwrap();
    assert_eq!(listed["total"], 0, "the service user sees no project yet");
    let created = app.bearer(Method::POST, PROJECTS, access).json(&json!({"name": "x"})).send().await.unwrap();
    assert_problem(created, 403, 403, PROJECTS).await;

    // HTTP Basic client authentication works too.
    let response = app
        .anonymous(Method::POST, TOKEN)
        .basic_auth(&client.client_id, Some(&client.client_secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    let wrong = app
        .token_request(&[
            ("grant_type", "client_credentials"),
            ("client_id", &client.client_id),
            ("client_secret", "nope"),
        ])
        .await;
    assert_oauth_error(wrong, 401, "invalid_client").await;
    let public = app.token_request(&[("grant_type", "client_credentials"), ("client_id", "default")]).await;
    assert_oauth_error(public, 400, "unauthorized_client").await;
    let by_password = app
        .token_request(&[
            ("grant_type", "password"),
            ("username", ADMIN_EMAIL),
            ("password", &app.admin_password),
            ("client_id", &client.client_id),
            ("client_secret", &client.client_secret),
        ])
        .await;
    assert_oauth_error(by_password, 400, "unauthorized_client").await;

    // Deleting the service user ends its token and its client.
    let path = format!("/new/v2.0/users/{}", client.service_user);
    assert_eq!(app.request(Method::DELETE, &path).send().await.unwrap().status(), StatusCode::NO_CONTENT);
    assert_eq!(projects_with(&app, access).await.status(), StatusCode::UNAUTHORIZED);
    let gone = app
        .token_request(&[
            ("grant_type", "client_credentials"),
            ("client_id", &client.client_id),
            ("client_secret", &client.client_secret),
        ])
        .await;
    assert_oauth_error(gone, 401, "invalid_client").await;
}

on_both_engines!(
    the_password_grant_gives_tokens_that_work_as_bearer,
    refresh_tokens_rotate_and_reuse_revokes,
    revocation_ends_the_session,
    client_credentials_act_as_the_service_user,
);

/// A form as name and value pairs.
type Form<'a> = Vec<(&'a str, &'a str)>;

#[tokio::test]
async fn bad_requests_get_rfc_6749_errors() {
    let app = spawn_app().await;
    let password = app.admin_password.clone();
    let base = |grant: &'static str| vec![("grant_type", grant), ("client_id", "default"), ("client_secret", "")];
    let cases: Vec<(Form<'_>, u16, &str)> = vec![
        (vec![("client_id", "default")], 400, "invalid_request"),
        (base("authorization_code"), 400, "unsupported_grant_type"),
        (base("password"), 400, "invalid_request"),
        ([base("password"), vec![("username", ADMIN_EMAIL)]].concat(), 400, "invalid_request"),
        (
            [base("password"), vec![("username", ADMIN_EMAIL), ("password", "wrong password")]].concat(),
            400,
            "invalid_grant",
        ),
        (
            [base("password"), vec![("username", "nobody@example.com"), ("password", &password)]].concat(),
            400,
            "invalid_grant",
        ),
        (
            [base("password"), vec![("username", "not an email"), ("password", &password)]].concat(),
            400,
            "invalid_grant",
        ),
        (base("refresh_token"), 400, "invalid_request"),
        (vec![("grant_type", "password"), ("username", ADMIN_EMAIL), ("password", &password)], 401, "invalid_client"),
        (
            vec![
                ("grant_type", "password"),
                ("client_id", "nobody"),
                ("username", ADMIN_EMAIL),
                ("password", &password),
            ],
            401,
            "invalid_client",
        ),
        (
            vec![
                ("grant_type", "password"),
                ("client_id", "default"),
                ("client_secret", "x"),
                ("username", ADMIN_EMAIL),
                ("password", &password),
            ],
            401,
            "invalid_client",
        ),
    ];
    for (form, status, error) in cases {
        let response = app.token_request(&form).await;
        let description = assert_oauth_error(response, status, error).await;
        assert!(!description.contains(&password), "{description}");
    }
    let wrong = app.token_request(&[("grant_type", "password"), ("username", ADMIN_EMAIL), ("password", "x")]).await;
    assert_oauth_error(wrong, 401, "invalid_client").await;

    let json = app
        .anonymous(Method::POST, TOKEN)
        .header("Content-Type", "text/plain")
        .body("grant_type=password")
        .send()
        .await
        .unwrap();
    assert_oauth_error(json, 400, "invalid_request").await;
    let twice = app
        .anonymous(Method::POST, TOKEN)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("grant_type=password&grant_type=password&client_id=default")
        .send()
        .await
        .unwrap();
    let description = assert_oauth_error(twice, 400, "invalid_request").await;
    assert!(description.contains("grant_type"), "{description}");
    let huge = app
        .anonymous(Method::POST, TOKEN)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!("grant_type=password&x={}", "a".repeat(20_000)))
        .send()
        .await
        .unwrap();
    assert_oauth_error(huge, 400, "invalid_request").await;
    let bad_org = app
        .anonymous(Method::POST, TOKEN)
        .header("organisation-id", "acme")
        .form(&[
            ("grant_type", "password"),
            ("client_id", "default"),
            ("username", ADMIN_EMAIL),
            ("password", &password),
        ])
        .send()
        .await
        .unwrap();
    assert_oauth_error(bad_org, 400, "invalid_request").await;
    let wrong_method = app.anonymous(Method::GET, TOKEN).send().await.unwrap();
    assert_problem(wrong_method, 405, 1013, TOKEN).await;
}

/// One person with accounts in two organisations: the `organisation-id` header picks one; without
/// it, the oldest account whose password matches.
#[tokio::test]
async fn the_organisation_id_header_picks_the_organisation() {
    let app = spawn_app().await;
    let store = app.store().await;
    let home = app.organisation().await;
    let other = app.other_organisation().await;
    let other_id = parley_core::ObjectId::parse(&other.organisation).unwrap();
    parley_server::admin::create_user(
        store.as_ref(),
        other_id,
        ADMIN_EMAIL,
        "Me elsewhere",
        "admin",
        Some(app.admin_password.clone()),
    )
    .await
    .unwrap();
    let sign_in = |org: Option<String>| {
        let app = &app;
        async move {
            let mut request = app.anonymous(Method::POST, TOKEN).form(&[
                ("grant_type", "password"),
                ("username", ADMIN_EMAIL),
                ("password", app.admin_password.as_str()),
                ("client_id", "default"),
            ]);
            if let Some(org) = org {
                request = request.header("organisation-id", org);
            }
            request.send().await.unwrap()
        }
    };
    let project_home = app.create_project().await;
    for (org, expected) in
        [(None, &home), (Some(home.clone()), &home), (Some(other.organisation.clone()), &other.organisation)]
    {
        let answer: Json = sign_in(org).await.json().await.unwrap();
        let access = answer["access_token"].as_str().unwrap();
        let listed: Json = projects_with(&app, access).await.json().await.unwrap();
        let sees_home = listed["items"].as_array().unwrap().iter().any(|p| p["_id"] == project_home);
        assert_eq!(sees_home, expected == &home, "signed in to {expected}");
    }
    let nowhere = sign_in(Some("5f0c6bc4ad4f8b0011b2e0e1".into())).await;
    assert_oauth_error(nowhere, 400, "invalid_grant").await;
}

/// §6 with tokens: an expired, forged or mismatched token is refused, naming the header.
#[tokio::test]
async fn bad_bearer_tokens_are_refused_by_name() {
    let app = spawn_app().await;
    let key = app.store().await.signing_key(vec![]).await.unwrap();
    let answer = app.sign_in(ADMIN_EMAIL, &app.admin_password).await;
    let valid = answer["access_token"].as_str().unwrap().to_owned();
    let claims: Json = {
        use base64::Engine as _;
        let payload = valid.split('.').nth(1).unwrap();
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
    };
    let sign = |claims: &Json, secret: &[u8]| {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            claims,
            &jsonwebtoken::EncodingKey::from_secret(secret),
        )
        .unwrap()
    };
    let mut expired = claims.clone();
    expired["exp"] = json!(claims["iat"].as_i64().unwrap() - 1);
    let detail = |response: Response| async move {
        assert_eq!(header(&response, "www-authenticate").as_deref(), Some("Bearer"));
        let body = assert_problem(response, 401, 401, PROJECTS).await;
        body["detail"].as_str().unwrap().to_owned()
    };
    let d = detail(projects_with(&app, &sign(&expired, &key)).await).await;
    assert!(d.contains("expired") && d.contains("Authorization"), "{d}");
    let d = detail(projects_with(&app, &sign(&claims, b"not the server's key, not at all")).await).await;
    assert!(d.contains("Authorization"), "{d}");
    let mut unknown_session = claims.clone();
    unknown_session["sid"] = json!("5f0c6bc4ad4f8b0011b2e0e1");
    let d = detail(projects_with(&app, &sign(&unknown_session, &key)).await).await;
    assert!(d.contains("Authorization"), "{d}");
    let none = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS512),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(&key),
    )
    .unwrap();
    detail(projects_with(&app, &none).await).await;

    // A valid token of one user beside another user's key.
    let other = app.user("apiKeys").await;
    let response = app
        .with_key(Method::GET, PROJECTS, &other.api_key)
        .header("Authorization", format!("Bearer {valid}"))
        .send()
        .await
        .unwrap();
    let d = detail(response).await;
    assert!(d.contains("different user"), "{d}");
    let response = app
        .with_key(Method::GET, PROJECTS, "0".repeat(64).as_str())
        .header("Authorization", format!("Bearer {valid}"))
        .send()
        .await
        .unwrap();
    let d = detail(response).await;
    assert!(d.contains("X-API-Key") && !d.contains("Authorization"), "{d}");
}

/// A token acts with the user's roles as they are now, not as they were when it was issued.
#[tokio::test]
async fn a_token_follows_the_users_current_membership() {
    let app = spawn_app().await;
    let member = app.user("").await;
    let project = app.create_project().await;
    let answer = app.sign_in(&member.email, &member.password).await;
    let access = answer["access_token"].as_str().unwrap();
    let path = format!("{PROJECTS}/{project}");
    assert_problem(app.bearer(Method::GET, &path, access).send().await.unwrap(), 404, 1002, &path).await;
    app.add_member(&project, &member.id, &["basic"]).await;
    assert_eq!(app.bearer(Method::GET, &path, access).send().await.unwrap().status(), StatusCode::OK);
    let renamed = app.bearer(Method::PATCH, &path, access).json(&json!({"name": "mine"})).send().await.unwrap();
    assert_problem(renamed, 403, 403, &path).await;
}
