//! What tests make through the API and read back: users, projects, records, tokens.

use std::time::Duration;

use parley_core::{ObjectId, RecordFilter};
use parley_store::testing::eventually;
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value as Json, json};

use super::{TestApp, content_type};

pub use parley_store::testing::record;

/// A user made for a test, with an API key and a password.
#[derive(Debug, Clone)]
pub struct TestUser {
    pub id: String,
    pub organisation: String,
    pub email: String,
    pub password: String,
    pub api_key: String,
}

impl TestApp {
    /// The bootstrap organisation's id.
    pub async fn organisation(&self) -> String {
        let store = self.store().await;
        parley_server::admin::organisation(store.as_ref(), None).await.expect("one organisation").id.to_string()
    }

    /// A user of the bootstrap organisation with these organisation roles, a password and a key.
    pub async fn user(&self, roles: &str) -> TestUser {
        let store = self.store().await;
        let org = parley_server::admin::organisation(store.as_ref(), None).await.expect("one organisation");
        self.user_in(org.id, roles).await
    }

    /// A user of `organisation` with these organisation roles, a password and a key.
    pub async fn user_in(&self, organisation: ObjectId, roles: &str) -> TestUser {
        let store = self.store().await;
        let email = format!("user-{}@example.com", ObjectId::generate());
        let password = format!("pw-{}", hex::encode(rand::random::<[u8; 8]>()));
        let (user, _) = parley_server::admin::create_user(
            store.as_ref(),
            organisation,
            &email,
            "Test user",
            roles,
            Some(password.clone()),
        )
        .await
        .expect("the user is created");
        let (_, api_key) = parley_server::admin::create_key(store.as_ref(), user.id, "test").await.expect("a key");
        TestUser { id: user.id.to_string(), organisation: organisation.to_string(), email, password, api_key }
    }

    /// A second organisation; returns its admin.
    pub async fn other_organisation(&self) -> TestUser {
        let store = self.store().await;
        let created = parley_server::admin::create_organisation(store.as_ref(), "Other", "boss@other.example")
            .await
            .expect("the organisation is created");
        let user =
            parley_server::admin::person(store.as_ref(), created.id, "boss@other.example").await.expect("its admin");
        TestUser {
            id: user.id.to_string(),
            organisation: created.id.to_string(),
            email: created.admin_email,
            password: created.password,
            api_key: created.api_key,
        }
    }

    /// Makes `user` a member of `project` with these project roles, as the admin.
    pub async fn add_member(&self, project: &str, user: &str, roles: &[&str]) {
        let response = self
            .request(Method::POST, &format!("/new/v2.0/projects/{project}/members"))
            .json(&json!({ "userId": user, "roles": roles }))
            .send()
            .await
            .expect("an answer");
        assert!(response.status().is_success(), "adding a member: {}", response.status());
    }

    /// Posts a form to the token endpoint.
    pub async fn token_request(&self, form: &[(&str, &str)]) -> Response {
        self.anonymous(Method::POST, "/auth/oauth2/token").form(form).send().await.expect("an answer")
    }

    /// Signs in with the password grant through the public client; returns the token answer.
    pub async fn sign_in(&self, username: &str, password: &str) -> Json {
        let response = self
            .token_request(&[
                ("grant_type", "password"),
                ("username", username),
                ("password", password),
                ("client_id", "default"),
                ("client_secret", ""),
            ])
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.expect("a JSON answer")
    }

    /// Creates a project and returns its id.
    pub async fn create_project(&self) -> String {
        self.create_project_with(json!({ "name": "Test bot" })).await["_id"].as_str().expect("an _id").to_owned()
    }

    /// Creates a project with these settings and returns its id.
    pub async fn create_project_with_settings(&self, settings: Json) -> String {
        let project = self.create_project_with(json!({ "name": "Test bot", "settings": settings })).await;
        project["_id"].as_str().expect("an _id").to_owned()
    }

    /// Creates a project from `body`, asserting success, and returns its JSON.
    pub async fn create_project_with(&self, body: Json) -> Json {
        let response = self
            .request(Method::POST, "/new/v2.0/projects")
            .header("Accept", "application/json")
            .json(&body)
            .send()
            .await
            .expect("the request is answered");
        assert_eq!(response.status(), StatusCode::CREATED);
        response.json().await.expect("a JSON body")
    }

    /// Sends records to the ingest endpoint as a JSON array.
    pub async fn ingest(&self, records: &[Json]) -> Response {
        self.request(Method::POST, "/new/v2.0/analytics/records")
            .header("Accept", "application/json")
            .json(records)
            .send()
            .await
            .expect("the request is answered")
    }

    /// Ingests records that must all be new.
    pub async fn ingest_new(&self, records: &[Json]) {
        let response = self.ingest(records).await;
        let status = response.status();
        let body: Json = response.json().await.expect("a JSON body");
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body, json!({ "inserted": records.len(), "duplicates": 0, "dropped": 0 }));
    }

    /// Sends an update with credentials and a JSON body.
    pub async fn patch(&self, body: &Json) -> Response {
        self.request(Method::PATCH, "/new/v2.0/analytics").json(body).send().await.expect("the request is answered")
    }

    /// One page of a project's records as JSON; `query` is added to `projectId`.
    pub async fn list(&self, project: &str, query: &[(&str, &str)]) -> Json {
        let mut pairs = vec![("projectId", project)];
        pairs.extend_from_slice(query);
        let response = self
            .get("/new/v2.0/analytics")
            .query(&pairs)
            .header("Accept", "application/json")
            .send()
            .await
            .expect("the request is answered");
        let status = response.status();
        let body: Json = response.json().await.expect("a JSON body");
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// Every record of a project, or of one contact in it, in the default order, page by page.
    pub async fn records(&self, project: &str, contact: Option<&str>) -> Vec<Json> {
        let mut items = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let mut query = vec![("limit", "100")];
            query.extend(contact.map(|contact| ("contactId", contact)));
            query.extend(next.as_deref().map(|cursor| ("next", cursor)));
            let page = self.list(project, &query).await;
            items.extend(page["items"].as_array().expect("items").iter().cloned());
            match page["nextCursor"].as_str() {
                Some(cursor) => next = Some(cursor.to_owned()),
                None => return items,
            }
        }
    }

    /// The record of a project with this `inputId`, if there is one.
    pub async fn find_record(&self, project: &str, input_id: &str) -> Option<Json> {
        let records = self.records(project, None).await;
        let found: Vec<&Json> = records.iter().filter(|r| r["inputId"] == input_id).collect();
        assert!(found.len() <= 1, "records with inputId {input_id}: {records:?}");
        found.into_iter().next().cloned()
    }

    /// The stored record with this `inputId`.
    pub async fn record_by_input(&self, project: &str, input_id: &str) -> Json {
        self.find_record(project, input_id).await.unwrap_or_else(|| panic!("no record with inputId {input_id}"))
    }

    /// One record read through `GET /analytics/{id}` as JSON.
    pub async fn get_record(&self, id: &str) -> Json {
        let response = self.get_accepting(&format!("/new/v2.0/analytics/{id}"), "application/json").await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(content_type(&response), "application/json");
        response.json().await.expect("a JSON body")
    }

    /// How many records the database holds for `project`, read from the store itself: HTTP
    /// cannot tell a deleted project's records apart from absent ones, both are invisible.
    pub async fn stored_record_count(&self, project: &str) -> u64 {
        let store = self.store().await;
        let filter = RecordFilter {
            project_id: ObjectId::parse(project).expect("a project id"),
            contact_id: None,
            session_id: None,
            from: None,
            to: None,
        };
        store.count_records(&filter).await.expect("a count")
    }
}

/// A record with every field a client may send, each with a distinctive value.
pub fn full_record(project: &str, input: &str) -> Json {
    json!({
        "projectId": project,
        "contactId": "3f2a9d1c0b7e4a5f8d6c2b1a0e9f8d7c",
        "sessionId": format!("session-{input}"),
        "inputId": input,
        "timestamp": "2024-05-01T12:00:00.123Z",
        "inputText": "I want to book a flight, \"tomorrow\"\nplease",
        "inputData": { "payload": { "seat": "12A", "count": 2 } },
        "state": "default",
        "mode": "TextData",
        "userType": "external",
        "channel": "webchat3",
        "flowLanguage": "en-US",
        "flowName": "Booking",
        "flowReferenceId": "flow-ref-1",
        "entrypoint": "5f0c6bc4ad4f8b0011b2e0e1",
        "entrypointType": "project",
        "intent": "bookFlight",
        "intentFlow": "Booking",
        "intentScore": 0.87,
        "slots": { "city": ["Berlin"] },
        "foundSlots": "city",
        "foundSlotDetails": "city: Berlin",
        "completedGoals": ["greeted"],
        "trackedGoals": ["booking", "upsell"],
        "understood": true,
        "executionTime": 41.5,
        "execution": 3,
        "localeName": "English",
        "localeReferenceId": "locale-ref-1",
        "endpointName": "Web",
        "endpointUrlToken": "token-1",
        "endpointType": "webchat3",
        "snapshotName": "release-7",
        "rating": 1,
        "ratingComment": "fine",
        "inHandoverRequest": false,
        "inHandoverConversation": true,
        "handoverEscalations": 1,
        "custom1": "c1",
        "custom2": "c2",
        "custom3": null,
        "custom4": "c4",
        "custom5": "c5",
        "custom6": "c6",
        "custom7": "c7",
        "custom8": "c8",
        "custom9": "c9",
        "custom10": "c10",
        "ip": "10.1.2.3"
    })
}

/// Every field of the analytics record, in the order representations show them.
pub const RECORD_FIELD_NAMES: [&str; 53] = [
    "id",
    "organisation",
    "projectId",
    "contactId",
    "sessionId",
    "inputId",
    "timestamp",
    "inputText",
    "inputData",
    "state",
    "mode",
    "userType",
    "channel",
    "flowLanguage",
    "flowName",
    "flowReferenceId",
    "entrypoint",
    "entrypointType",
    "intent",
    "intentFlow",
    "intentScore",
    "slots",
    "foundSlots",
    "foundSlotDetails",
    "completedGoals",
    "trackedGoals",
    "understood",
    "executionTime",
    "execution",
    "localeName",
    "localeReferenceId",
    "endpointName",
    "endpointUrlToken",
    "endpointType",
    "snapshotName",
    "rating",
    "ratingComment",
    "inHandoverRequest",
    "inHandoverConversation",
    "handoverEscalations",
    "custom1",
    "custom2",
    "custom3",
    "custom4",
    "custom5",
    "custom6",
    "custom7",
    "custom8",
    "custom9",
    "custom10",
    "ip",
    "expiresAt",
    "updatedAt",
];

/// Asks for an erasure (`DELETE /analytics/{projectId}`) and answers the task it queued.
pub async fn erase(app: &TestApp, project: &str, body: Json) -> Json {
    let response = app
        .request(Method::DELETE, &format!("/new/v2.0/analytics/{project}"))
        .header("Accept", "application/json")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let task: Json = response.json().await.unwrap();
    assert_eq!(task["status"], json!("queued"));
    assert_eq!(task["deleted"], json!(0));
    assert_eq!(location, format!("/new/v2.0/tasks/{}", task["_id"].as_str().unwrap()));
    task
}

/// An erasure task as `GET /tasks/{id}` shows it.
pub async fn task(app: &TestApp, id: &str) -> Json {
    let response = app.get_accepting(&format!("/new/v2.0/tasks/{id}"), "application/json").await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

/// The task once it is done or failed (at most 20 s).
pub async fn finished(app: &TestApp, id: &str) -> Json {
    eventually(Duration::from_secs(20), || async {
        let task = task(app, id).await;
        (task["status"] == json!("done") || task["status"] == json!("error")).then_some(task)
    })
    .await
}

/// Erases what `body` names in the project and waits for the task to end; answers it.
pub async fn erase_and_wait(app: &TestApp, project: &str, body: Json) -> Json {
    let task = erase(app, project, body).await;
    finished(app, task["_id"].as_str().unwrap()).await
}

/// Sends a JSON request as the app's admin, asking for JSON, and answers the status and the body
/// (`null` when empty).
pub async fn call(app: &TestApp, method: Method, path: &str, body: Option<&Json>) -> (StatusCode, Json) {
    let mut request = app.request(method, path).header("Accept", "application/json");
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    (status, if text.is_empty() { Json::Null } else { serde_json::from_str(&text).unwrap() })
}

/// The rows of an OData read that must succeed.
pub async fn odata_values(app: &TestApp, path: &str) -> Vec<Json> {
    let (status, body) = call(app, Method::GET, path, None).await;
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    body["value"].as_array().unwrap().clone()
}
