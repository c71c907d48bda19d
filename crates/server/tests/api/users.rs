//! Users of an organisation (docs/contract/rest.md §5).

use reqwest::{Method, StatusCode};
use serde_json::{Value as Json, json};

use crate::helpers::{ADMIN_EMAIL, Engine, assert_invalid, assert_problem, on_both_engines, spawn_app, spawn_app_on};

const USERS: &str = "/new/v2.0/users";

async fn users_are_created_listed_and_deleted(engine: Engine) {
    let app = spawn_app_on(engine).await;
    let response = app
        .request(Method::POST, USERS)
        .header("Accept", "application/json")
        .json(&json!({"email": " Ada@Example.com", "name": "Ada", "password": "analytical engine", "roles": ["odata"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: Json = response.json().await.unwrap();
    let mut keys: Vec<&str> = created.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["_id", "createdAt", "email", "kind", "name", "roles"]);
    assert_eq!(created["email"], "ada@example.com");
    assert_eq!(created["roles"], json!(["odata"]));
    assert_eq!(created["kind"], "person");

    // The new user signs in with the password, whatever the email's case.
    let answer = app.sign_in("ADA@example.com", "analytical engine").await;
    let access = answer["access_token"].as_str().unwrap().to_owned();

    let list: Json = app.get_accepting(USERS, "application/json").await.json().await.unwrap();
    assert_eq!(list["total"], 2);
    let text = list.to_string();
    assert!(!text.contains("analytical engine") && !text.contains("argon2"), "{text}");
    let emails: Vec<&str> = list["items"].as_array().unwrap().iter().map(|u| u["email"].as_str().unwrap()).collect();
    assert_eq!(emails, [ADMIN_EMAIL, "ada@example.com"]);

    let duplicate = app
        .request(Method::POST, USERS)
        .json(&json!({"email": "ada@example.com", "name": "Ada 2", "roles": []}))
        .send()
        .await
        .unwrap();
    let body = assert_problem(duplicate, 409, 1004, USERS).await;
    assert!(body["detail"].as_str().unwrap().contains("email"), "{body}");

    let path = format!("{USERS}/{}", created["_id"].as_str().unwrap());
    assert_eq!(app.request(Method::DELETE, &path).send().await.unwrap().status(), StatusCode::NO_CONTENT);
    assert_problem(app.request(Method::DELETE, &path).send().await.unwrap(), 404, 1002, &path).await;
    let after = app.bearer(Method::GET, "/new/v2.0/projects", &access).send().await.unwrap();
    assert_problem(after, 401, 401, "/new/v2.0/projects").await;
    let list: Json = app.get_accepting(USERS, "application/json").await.json().await.unwrap();
    assert_eq!(list["total"], 1);
}

/// Deleting a user ends their API keys and tokens at once.
async fn deleting_a_user_revokes_their_keys_and_tokens(engine: Engine) {
    let app = spawn_app_on(engine).await;
    let user = app.user("apiKeys").await;
    let tokens = app.sign_in(&user.email, &user.password).await;
    let keys = "/new/v2.0/users/me/apikeys";
    assert_eq!(app.with_key(Method::GET, keys, &user.api_key).send().await.unwrap().status(), StatusCode::OK);
    let path = format!("{USERS}/{}", user.id);
    assert_eq!(app.request(Method::DELETE, &path).send().await.unwrap().status(), StatusCode::NO_CONTENT);
    assert_problem(app.with_key(Method::GET, keys, &user.api_key).send().await.unwrap(), 401, 401, keys).await;
    let access = tokens["access_token"].as_str().unwrap();
    assert_problem(app.bearer(Method::GET, keys, access).send().await.unwrap(), 401, 401, keys).await;
    let refreshed = app
        .token_request(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
            ("client_id", "default"),
        ])
        .await;
    assert_eq!(refreshed.status(), StatusCode::BAD_REQUEST);
    let again = app
        .token_request(&[
            ("grant_type", "password"),
            ("username", &user.email),
            ("password", &user.password),
            ("client_id", "default"),
        ])
        .await;
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);
}

on_both_engines!(users_are_created_listed_and_deleted, deleting_a_user_revokes_their_keys_and_tokens);

#[tokio::test]
async fn the_last_admin_cannot_be_deleted() {
    let app = spawn_app().await;
    let list: Json = app.get_accepting(USERS, "application/json").await.json().await.unwrap();
    let admin = list["items"][0]["_id"].as_str().unwrap().to_owned();
    let path = format!("{USERS}/{admin}");
    let body = assert_problem(app.request(Method::DELETE, &path).send().await.unwrap(), 409, 1004, &path).await;
    assert!(body["detail"].as_str().unwrap().contains("last admin"), "{body}");
    let deputy = app.user("admin").await;
    assert_eq!(app.request(Method::DELETE, &path).send().await.unwrap().status(), StatusCode::NO_CONTENT);
    let mine = format!("{USERS}/{}", deputy.id);
    assert_problem(app.with_key(Method::DELETE, &mine, &deputy.api_key).send().await.unwrap(), 409, 1004, &mine).await;
}

#[tokio::test]
async fn bad_user_bodies_are_refused_by_field() {
    let app = spawn_app().await;
    let post = |body: Json| app.request(Method::POST, USERS).json(&body).send();
    let ok = json!({"email": "a@example.com", "name": "A", "roles": []});
    let with = |key: &str, value: Json| {
        let mut body = ok.clone();
        body[key] = value;
        body
    };
    let cases = [
        (json!({"name": "A", "roles": []}), 1000, "email"),
        (json!({"email": "a@example.com", "roles": []}), 1000, "name"),
        (json!({"email": "a@example.com", "name": "A"}), 1000, "roles"),
        (with("email", json!("not-an-email")), 1005, "email"),
        (with("email", json!(5)), 1005, "email"),
        (with("name", json!("")), 1005, "name"),
        (with("password", json!("short")), 1005, "password"),
        (with("password", json!(12345678)), 1005, "password"),
        (with("roles", json!(["root"])), 1005, "roles"),
        (with("roles", json!("admin")), 1005, "roles"),
        (with("isAdmin", json!(true)), 1005, "isAdmin"),
    ];
    for (body, code, field) in cases {
        assert_invalid(post(body).await.unwrap(), code, USERS, field).await;
    }
    assert_problem(app.request(Method::POST, USERS).send().await.unwrap(), 400, 1000, USERS).await;
    let list: Json = app.get_accepting(USERS, "application/json").await.json().await.unwrap();
    assert_eq!(list["total"], 1, "nothing was created");
    assert_invalid(app.get(&format!("{USERS}?limit=0")).send().await.unwrap(), 1005, USERS, "limit").await;
}

/// The operator's subcommands, run as the binary against the server's database.
#[tokio::test]
async fn the_cli_creates_organisations_users_keys_and_clients() {
    let dir = tempfile::tempdir().unwrap();
    let store_url = format!("sqlite://{}", dir.path().join("cli.db").display());
    let run = |args: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_parley"))
            .args(args)
            .args(["--database", &store_url])
            .env_remove("PARLEY_NEW_USER_PASSWORD")
            .output()
            .expect("parley runs");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr),
        )
    };
    let value = |text: &str, label: &str| -> String {
        text.lines()
            .find_map(|l| l.strip_prefix(label))
            .unwrap_or_else(|| panic!("no {label} in {text}"))
            .trim()
            .to_owned()
    };
    let (ok, text) = run(&["users", "create", "--email", "a@example.com", "--name", "A"]);
    assert!(!ok && text.contains("no organisation"), "{text}");
    let (ok, text) = run(&["organisations", "create", "Acme", "--admin-email", "Boss@Acme.example"]);
    assert!(ok, "{text}");
    let org = value(&text, "organisation:");
    assert_eq!(org.len(), 24);
    assert!(value(&text, "admin API key (shown only now):").len() >= 32, "{text}");
    let (ok, text) = run(&["organisations", "create", "Beta", "--admin-email", "boss@beta.example"]);
    assert!(ok, "{text}");
    let (ok, text) = run(&["users", "create", "--email", "a@example.com", "--name", "A", "--roles", "odata"]);
    assert!(!ok && text.contains("several organisations"), "{text}");
    let (ok, text) =
        run(&["users", "create", "--email", "a@example.com", "--name", "A", "--roles", "root", "--organisation", &org]);
    assert!(!ok && text.contains("roles"), "{text}");
    let (ok, text) = run(&[
        "users",
        "create",
        "--email",
        "a@example.com",
        "--name",
        "A",
        "--roles",
        "odata",
        "--organisation",
        &org,
    ]);
    assert!(ok, "{text}");
    assert!(value(&text, "password (shown only now):").len() >= 16);
    let (ok, text) = run(&["keys", "create", "--user", "a@example.com", "--organisation", &org]);
    assert!(ok, "{text}");
    let key_id = value(&text, "key:");
    let (ok, text) = run(&["keys", "list", "--user", "a@example.com", "--organisation", &org]);
    assert!(ok && text.contains(&key_id), "{text}");
    let (ok, text) = run(&["keys", "revoke", &key_id]);
    assert!(ok, "{text}");
    let (ok, text) = run(&["keys", "revoke", &key_id]);
    assert!(!ok && text.contains("no API key"), "{text}");
    let (ok, text) = run(&["oauth-clients", "create", "reporting", "--roles", "odata", "--organisation", &org]);
    assert!(ok, "{text}");
    assert_eq!(value(&text, "client_id:").len(), 24);
    assert!(value(&text, "client_secret (shown only now):").len() >= 32);
}
