//! `/openapi.json` is true: a scenario calls every documented operation for real, and each
//! request body it sends and each answer it gets is checked against the document: the status is
//! one the operation lists, and a JSON body matches the schema listed for that status and media
//! type. An operation the scenario does not reach fails the test, so a new route is checked as
//! soon as it is documented.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{Value as Json, json};

use crate::helpers::{TestApp, spawn_app};

struct Conformance<'a> {
    app: &'a TestApp,
    document: Json,
    /// (method, path template) of every operation called.
    called: BTreeSet<(String, String)>,
}

/// `text` as one JSON Pointer token.
fn token(text: &str) -> String {
    text.replace('~', "~0").replace('/', "~1")
}

impl<'a> Conformance<'a> {
    async fn new(app: &'a TestApp) -> Conformance<'a> {
        let document = app.anonymous(Method::GET, "/openapi.json").send().await.unwrap().json().await.unwrap();
        Conformance { app, document, called: BTreeSet::new() }
    }

    /// The schema at `pointer` in the document, with the document's components beside it so that
    /// its references resolve, checked against `instance`.
    fn check(&self, pointer: &str, instance: &Json, what: &str) {
        let Some(schema) = self.document.pointer(pointer) else { return };
        let mut root = match schema {
            Json::Object(object) => object.clone(),
            _ => return,
        };
        root.insert("components".into(), self.document["components"].clone());
        let validator = jsonschema::validator_for(&Json::Object(root)).unwrap_or_else(|e| panic!("{pointer}: {e}"));
        let errors: Vec<String> =
            validator.iter_errors(instance).map(|e| format!("{} at {}", e, e.instance_path())).collect();
        assert!(errors.is_empty(), "{what} does not match {pointer}:\n{}\n{instance}", errors.join("\n"));
    }

    /// Calls `path` (an instance of the documented `template`) with an optional JSON body and
    /// answers the status and the body (JSON, or the text as a JSON string).
    async fn call(&mut self, method: Method, template: &str, path: &str, body: Option<Json>) -> (u16, Json) {
        self.send(method, template, path, body, true).await
    }

    /// [`Conformance::call`] with a body the document refuses, to see the refusal documented.
    async fn call_refused(&mut self, method: Method, template: &str, path: &str, body: Json) -> (u16, Json) {
        self.send(method, template, path, Some(body), false).await
    }

    async fn send(
        &mut self,
        method: Method,
        template: &str,
        path: &str,
        body: Option<Json>,
        valid: bool,
    ) -> (u16, Json) {
        let verb = method.as_str().to_lowercase();
        let operation = format!("/paths/{}/{verb}", token(template));
        assert!(self.document.pointer(&operation).is_some(), "{verb} {template} is not documented");
        self.called.insert((verb.clone(), template.to_owned()));
        let mut request = self.app.request(method, path).header("Accept", "application/json");
        if let Some(body) = &body {
            if valid {
                self.check(&format!("{operation}/requestBody/content/application~1json/schema"), body, "the request");
            }
            request = request.json(body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let media = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or_default().to_owned())
            .unwrap_or_default();
        let text = response.text().await.unwrap();
        let answer = format!("{operation}/responses/{status}");
        assert!(
            self.document.pointer(&answer).is_some(),
            "{verb} {path} answered {status}, which is not documented: {text}"
        );
        if !text.is_empty() {
            let content = format!("{answer}/content/{}", token(&media));
            assert!(
                self.document.pointer(&content).is_some(),
                "{verb} {path} answered {status} as {media}, which the document does not list for it"
            );
        }
        let body = if media.ends_with("json") && !text.is_empty() {
            let body: Json = serde_json::from_str(&text).unwrap();
            self.check(
                &format!("{answer}/content/{}/schema", token(&media)),
                &body,
                &format!("{verb} {path} {status}"),
            );
            body
        } else {
            Json::String(text)
        };
        (status, body)
    }

    /// Every documented operation the scenario did not call.
    fn missed(&self) -> Vec<(String, String)> {
        let mut all = Vec::new();
        for (path, item) in self.document["paths"].as_object().unwrap() {
            for verb in ["get", "post", "put", "patch", "delete"] {
                if item.get(verb).is_some() && !self.called.contains(&(verb.to_owned(), path.clone())) {
                    all.push((verb.to_owned(), path.clone()));
                }
            }
        }
        all
    }
}

#[tokio::test]
async fn every_operation_answers_as_the_document_says() {
    let app = spawn_app().await;
    let mut c = Conformance::new(&app).await;
    use Method as M;

    for path in [
        "/openapi.json",
        "/reference",
        "/version",
        "/health/live",
        "/health/ready",
        "/insights",
        "/insights/app.js",
        "/insights/app.css",
        "/favicon.ico",
    ] {
        assert_eq!(c.call(M::GET, path, path, None).await.0, 200, "{path}");
    }
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    assert_eq!(client.get(app.url("/")).send().await.unwrap().status(), 307);
    c.called.insert(("get".into(), "/".into()));

    // Projects.
    let (status, project) =
        c.call(M::POST, "/new/v2.0/projects", "/new/v2.0/projects", Some(json!({"name": "bot"}))).await;
    assert_eq!(status, 201);
    let id = project["_id"].as_str().unwrap().to_owned();
    let one = "/new/v2.0/projects/{projectId}";
    let here = format!("/new/v2.0/projects/{id}");
    assert_eq!(c.call(M::GET, "/new/v2.0/projects", "/new/v2.0/projects?limit=5", None).await.0, 200);
    assert_eq!(c.call(M::GET, one, &here, None).await.0, 200);
    assert_eq!(c.call(M::PATCH, one, &here, Some(json!({"name": "bot 2", "locale": "en-US"}))).await.0, 200);
    assert_eq!(c.call(M::GET, one, "/new/v2.0/projects/5f0c6bc4ad4f8b0011b2e0e1", None).await.0, 404);

    // Records.
    let records = json!([{"projectId": id, "contactId": "c1", "sessionId": "s1", "inputId": "i1", "intent": "hi",
                          "timestamp": "2024-05-01T12:00:00.000Z"}]);
    assert_eq!(
        c.call(M::POST, "/new/v2.0/analytics/records", "/new/v2.0/analytics/records", Some(records)).await.0,
        201
    );
    let bad = json!([{"projectId": id, "contactId": "c1"}]);
    assert_eq!(c.call_refused(M::POST, "/new/v2.0/analytics/records", "/new/v2.0/analytics/records", bad).await.0, 400);
    let (status, page) =
        c.call(M::GET, "/new/v2.0/analytics", &format!("/new/v2.0/analytics?projectId={id}"), None).await;
    assert_eq!(status, 200);
    let record = page["items"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(c.call(M::GET, "/new/v2.0/analytics/{id}", &format!("/new/v2.0/analytics/{record}"), None).await.0, 200);
    let update = json!({"projectId": id, "contactId": "c1", "properties": {"rating": 4}});
    assert_eq!(c.call(M::PATCH, "/new/v2.0/analytics", "/new/v2.0/analytics", Some(update)).await.0, 204);

    // Conversations, steps, escalations, goals and goal events.
    let messages = json!([{"projectId": id, "contactId": "c1", "sessionId": "s1", "messageId": "m1", "type": "input",
                           "source": "user", "inputText": "hello"}]);
    let path = "/new/v2.0/conversations/messages";
    assert_eq!(c.call(M::POST, path, path, Some(messages)).await.0, 201);
    let index = format!("/new/v2.0/conversations?projectId={id}&contactIds=c1");
    assert_eq!(c.call(M::GET, "/new/v2.0/conversations", &index, None).await.0, 200);
    let transcript = "/new/v2.0/conversations/{sessionId}";
    assert_eq!(
        c.call(M::GET, transcript, &format!("/new/v2.0/conversations/s1?projectId={id}&expertMode=true"), None).await.0,
        200
    );
    let report = "/new/v2.0/insights/{report}";
    for name in ["overview", "sessions", "topIntents", "handoversByHour"] {
        let path = format!("/new/v2.0/insights/{name}?projectId={id}&from=2024-05-01&to=2024-05-01");
        assert_eq!(c.call(M::GET, report, &path, None).await.0, 200, "{name}");
    }
    let bad = format!("/new/v2.0/insights/sessions?projectId={id}&timezone=Nowhere");
    assert_eq!(c.call(M::GET, report, &bad, None).await.0, 400);
    let steps = json!([{"projectId": id, "sessionId": "s1", "executionId": "e1", "entityReferenceId": "n1",
                        "stepLabel": "Start", "type": "node"}]);
    assert_eq!(c.call(M::POST, "/new/v2.0/analytics/steps", "/new/v2.0/analytics/steps", Some(steps)).await.0, 201);
    let escalations = json!([{"projectId": id, "sessionId": "s1", "escalationId": "x1", "status": "opened"}]);
    let path = "/new/v2.0/analytics/escalations";
    assert_eq!(c.call(M::POST, path, path, Some(escalations)).await.0, 201);
    let goals = "/new/v2.0/projects/{projectId}/goals";
    let goal = json!({"name": "Order", "steps": [{"stepId": "o1", "name": "Start", "type": "start", "order": 1},
                                                {"stepId": "o2", "name": "Done", "type": "completion", "order": 2}]});
    let (status, created) = c.call(M::POST, goals, &format!("{here}/goals"), Some(goal)).await;
    assert_eq!(status, 201);
    let goal_id = created["_id"].as_str().unwrap().to_owned();
    assert_eq!(c.call(M::GET, goals, &format!("{here}/goals"), None).await.0, 200);
    let one_goal = "/new/v2.0/projects/{projectId}/goals/{goalId}";
    let goal_here = format!("{here}/goals/{goal_id}");
    assert_eq!(c.call(M::GET, one_goal, &goal_here, None).await.0, 200);
    assert_eq!(c.call(M::PATCH, one_goal, &goal_here, Some(json!({"description": "orders"}))).await.0, 200);
    let events = json!([{"projectId": id, "sessionId": "s1", "eventId": "g1", "goalId": goal_id, "stepId": "o1",
                         "goalCycleId": "c1"}]);
    let path = "/new/v2.0/analytics/goalevents";
    assert_eq!(c.call(M::POST, path, path, Some(events)).await.0, 201);
    assert_eq!(c.call(M::DELETE, one_goal, &goal_here, None).await.0, 204);
    assert_eq!(c.call(M::DELETE, transcript, &format!("/new/v2.0/conversations/s1?projectId={id}"), None).await.0, 200);

    // OData.
    assert_eq!(c.call(M::GET, "/v2.4/", "/v2.4/", None).await.0, 200);
    assert_eq!(c.call(M::GET, "/v2.4/$metadata", "/v2.4/$metadata", None).await.0, 200);
    assert_eq!(
        c.call(M::GET, "/v2.4/{entitySet}", "/v2.4/Analytics?$filter=rating%20ge%204&$count=true", None).await.0,
        200
    );
    assert_eq!(c.call(M::GET, "/v2.4/{entitySet}", "/v2.4/Analytics?$filter=nonsense", None).await.0, 400);
    assert_eq!(c.call(M::GET, "/v2.4/{entitySet}/$count", "/v2.4/Sessions/$count", None).await.0, 200);
    assert_eq!(c.call(M::GET, "/v2.4/{entitySet}('{id}')", &format!("/v2.4/Analytics('{record}')"), None).await.0, 200);

    // Users, members, keys.
    let (status, user) = c
        .call(
            M::POST,
            "/new/v2.0/users",
            "/new/v2.0/users",
            Some(json!({"email": "ann@example.com", "name": "Ann", "password": "a long enough password", "roles": []})),
        )
        .await;
    assert_eq!(status, 201, "{user}");
    let user_id = user["_id"].as_str().unwrap().to_owned();
    assert_eq!(c.call(M::GET, "/new/v2.0/users", "/new/v2.0/users", None).await.0, 200);
    let members = "/new/v2.0/projects/{projectId}/members";
    assert_eq!(
        c.call(M::POST, members, &format!("{here}/members"), Some(json!({"userId": user_id, "roles": ["basic"]})))
            .await
            .0,
        201
    );
    assert_eq!(c.call(M::GET, members, &format!("{here}/members"), None).await.0, 200);
    let member = "/new/v2.0/projects/{projectId}/members/{userId}";
    assert_eq!(c.call(M::DELETE, member, &format!("{here}/members/{user_id}"), None).await.0, 204);
    let keys = "/new/v2.0/users/me/apikeys";
    let (status, key) = c.call(M::POST, keys, keys, Some(json!({"name": "ci"}))).await;
    assert_eq!(status, 201, "{key}");
    assert_eq!(c.call(M::GET, keys, keys, None).await.0, 200);
    let key_path = format!("{keys}/{}", key["_id"].as_str().unwrap());
    assert_eq!(c.call(M::DELETE, "/new/v2.0/users/me/apikeys/{apiKeyId}", &key_path, None).await.0, 204);
    assert_eq!(c.call(M::DELETE, "/new/v2.0/users/{userId}", &format!("/new/v2.0/users/{user_id}"), None).await.0, 204);

    // OAuth2, whose bodies are forms: the answers are checked.
    let token = app.sign_in("admin@localhost", &app.admin_password).await;
    c.called.insert(("post".into(), "/auth/oauth2/token".into()));
    c.check("/paths/~1auth~1oauth2~1token/post/responses/200/content/application~1json/schema", &token, "a token");
    let form = [("token", token["refresh_token"].as_str().unwrap()), ("client_id", "default")];
    let response = app.anonymous(M::POST, "/auth/oauth2/revoke").form(&form).send().await.unwrap();
    assert_eq!(response.status(), 200);
    c.called.insert(("post".into(), "/auth/oauth2/revoke".into()));

    // Erasure and its task, then the project goes.
    let erase = "/new/v2.0/analytics/{id}";
    let (status, task) =
        c.call(M::DELETE, erase, &format!("/new/v2.0/analytics/{id}"), Some(json!({"contactIds": ["c1"]}))).await;
    assert_eq!(status, 202, "{task}");
    let task_path = format!("/new/v2.0/tasks/{}", task["_id"].as_str().unwrap());
    assert_eq!(c.call(M::GET, "/new/v2.0/tasks/{taskId}", &task_path, None).await.0, 200);
    assert_eq!(c.call(M::DELETE, one, &here, None).await.0, 204);

    assert_eq!(c.missed(), Vec::<(String, String)>::new(), "operations the scenario does not call");
}
