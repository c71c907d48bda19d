//! Tenant isolation and roles: every REST endpoint × {no credential, bad credential, other
//! organisation, insufficient role, right role}. Each case checks the status, that nothing changed
//! in either organisation, that the other organisation's answer holds none of this one's ids, and
//! that an id of the other organisation answers exactly like an absent one. Adding a route is one
//! line in the table at the bottom.

use parley_core::ObjectId;
use reqwest::{Method, StatusCode};
use serde_json::{Value as Json, json};

use crate::helpers::{TestApp, TestUser, record, spawn_app};

/// Who makes a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    /// Organisation admin.
    Admin,
    /// Member of the project with `basic`.
    Basic,
    /// Member of the project with `analytics`.
    Analytics,
    /// Member of the project with `projectAdmin`.
    ProjectAdmin,
    /// The organisation role `apiKeys`, no project.
    ApiKeys,
    /// No role at all.
    Plain,
}

/// One endpoint: method, path and body with placeholders `{project}`, `{record}`, `{user}`
/// (a user of the organisation), `{member}` (a member of the project) and `{key}` (an API key of
/// the `apiKeys` user); the least role that may call it and its success status; a role that may
/// not, with the status it gets; and what the other organisation's admin gets.
struct Route {
    method: &'static str,
    path: &'static str,
    body: Option<&'static str>,
    right: Who,
    success: u16,
    insufficient: Option<(Who, u16)>,
    other_organisation: u16,
}

const PLACEHOLDERS: [&str; 6] = ["{project}", "{record}", "{user}", "{member}", "{key}", "{goal}"];

/// The ids one organisation holds, by placeholder.
struct Side {
    admin_key: String,
    ids: Vec<(&'static str, String)>,
}

impl Side {
    fn fill(&self, template: &str) -> String {
        self.ids.iter().fold(template.to_owned(), |text, (name, id)| text.replace(name, id))
    }
}

struct Fixture {
    home: Side,
    away: Side,
    users: Vec<(Who, TestUser)>,
}

/// A message of contact c1 in `session`.
fn message(project: &str, session: &str, id: &str) -> Json {
    json!({"projectId": project, "contactId": "c1", "sessionId": session, "messageId": id, "type": "input",
           "source": "user", "inputText": "hello"})
}

/// An executed step of contact c1 in session s1.
fn step(project: &str) -> Json {
    json!({"projectId": project, "userId": "c1", "sessionId": "s1", "executionId": "e1", "type": "node",
           "entityReferenceId": "node-1", "stepLabel": "Greeting"})
}

/// An escalation of contact c1 in session s1.
fn escalation(project: &str) -> Json {
    json!({"projectId": project, "contactId": "c1", "sessionId": "s1", "escalationId": "x1", "status": "opened"})
}

/// A goal of the project, made with `key`; answers its id.
async fn goal_id(app: &TestApp, key: &str, project: &str) -> String {
    let goal = json!({"name": "Refund", "steps": [{"stepId": "asked", "name": "Asked", "type": "start", "order": 1},
                                                   {"name": "Done", "type": "completion", "order": 2}]});
    let response = app.with_key(Method::POST, &format!("/new/v2.0/projects/{project}/goals"), key).json(&goal);
    let response = response.send().await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: Json = response.json().await.unwrap();
    created["_id"].as_str().unwrap().to_owned()
}

async fn key_id(app: &TestApp, user: &str) -> String {
    let keys = app.store().await.list_api_keys(ObjectId::parse(user).unwrap()).await.unwrap();
    keys[0].id.to_string()
}

async fn first_record(app: &TestApp, key: &str, project: &str) -> String {
    let list: Json = app
        .with_key(Method::GET, &format!("/new/v2.0/analytics?projectId={project}"), key)
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    list["items"][0]["id"].as_str().expect("a record").to_owned()
}

impl Fixture {
    async fn build(app: &TestApp) -> Fixture {
        let project = app.create_project().await;
        app.ingest_new(&[record(&project, "c1", "s1", "i1")]).await;
        let said = app
            .request(Method::POST, "/new/v2.0/conversations/messages")
            .json(&[message(&project, "s1", "m1")])
            .send()
            .await
            .unwrap();
        assert_eq!(said.status(), StatusCode::CREATED);
        let stepped = app.request(Method::POST, "/new/v2.0/analytics/steps").json(&[step(&project)]).send().await;
        assert_eq!(stepped.unwrap().status(), StatusCode::CREATED);
        let escalated = app.request(Method::POST, "/new/v2.0/analytics/escalations").json(&[escalation(&project)]);
        assert_eq!(escalated.send().await.unwrap().status(), StatusCode::CREATED);
        let record_id = first_record(app, &app.api_key, &project).await;
        let mut users = Vec::new();
        for (who, org_roles, project_roles) in [
            (Who::Basic, "", Some("basic")),
            (Who::Analytics, "", Some("analytics")),
            (Who::ProjectAdmin, "", Some("projectAdmin")),
            (Who::ApiKeys, "apiKeys", None),
            (Who::Plain, "", None),
        ] {
            let user = app.user(org_roles).await;
            if let Some(role) = project_roles {
                app.add_member(&project, &user.id, &[role]).await;
            }
            users.push((who, user));
        }
        let target = app.user("").await;
        let member = app.user("").await;
        app.add_member(&project, &member.id, &["basic"]).await;
        let api_keys_user = users.iter().find(|(w, _)| *w == Who::ApiKeys).unwrap().1.id.clone();
        let home_goal = goal_id(app, &app.api_key, &project).await;
        let home = Side {
            admin_key: app.api_key.clone(),
            ids: vec![
                ("{project}", project),
                ("{record}", record_id),
                ("{user}", target.id),
                ("{member}", member.id),
                ("{key}", key_id(app, &api_keys_user).await),
                ("{goal}", home_goal),
            ],
        };

        let boss = app.other_organisation().await;
        let created: Json = app
            .with_key(Method::POST, "/new/v2.0/projects", &boss.api_key)
            .header("Accept", "application/json")
            .json(&json!({"name": "theirs"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let their_project = created["_id"].as_str().unwrap().to_owned();
        let ingested = app
            .with_key(Method::POST, "/new/v2.0/analytics/records", &boss.api_key)
            .json(&[record(&their_project, "c1", "s1", "i1")])
            .send()
            .await
            .unwrap();
        assert_eq!(ingested.status(), StatusCode::CREATED);
        let said = app
            .with_key(Method::POST, "/new/v2.0/conversations/messages", &boss.api_key)
            .json(&[message(&their_project, "s1", "m1")])
            .send()
            .await
            .unwrap();
        assert_eq!(said.status(), StatusCode::CREATED);
        let stepped = app
            .with_key(Method::POST, "/new/v2.0/analytics/steps", &boss.api_key)
            .json(&[step(&their_project)])
            .send()
            .await
            .unwrap();
        assert_eq!(stepped.status(), StatusCode::CREATED);
        let escalated = app
            .with_key(Method::POST, "/new/v2.0/analytics/escalations", &boss.api_key)
            .json(&[escalation(&their_project)])
            .send()
            .await
            .unwrap();
        assert_eq!(escalated.status(), StatusCode::CREATED);
        let their_record = first_record(app, &boss.api_key, &their_project).await;
        let their_user = app.user_in(ObjectId::parse(&boss.organisation).unwrap(), "apiKeys").await;
        let added = app
            .with_key(Method::POST, &format!("/new/v2.0/projects/{their_project}/members"), &boss.api_key)
            .json(&json!({"userId": their_user.id, "roles": ["basic"]}))
            .send()
            .await
            .unwrap();
        assert!(added.status().is_success());
        let their_goal = goal_id(app, &boss.api_key, &their_project).await;
        let away = Side {
            admin_key: boss.api_key.clone(),
            ids: vec![
                ("{project}", their_project),
                ("{record}", their_record),
                ("{user}", their_user.id.clone()),
                ("{member}", their_user.id.clone()),
                ("{key}", key_id(app, &their_user.id).await),
                ("{goal}", their_goal),
            ],
        };
        Fixture { home, away, users }
    }

    fn key(&self, who: Who) -> &str {
        match who {
            Who::Admin => &self.home.admin_key,
            _ => &self.users.iter().find(|(w, _)| *w == who).expect("a user for every role").1.api_key,
        }
    }

    /// Everything each organisation holds, as its admin sees it: this one's, then the other's.
    async fn snapshot(&self, app: &TestApp) -> (Vec<Json>, Vec<Json>) {
        let mut sides = Vec::new();
        for side in [&self.home, &self.away] {
            let mut state = Vec::new();
            let project = side.fill("{project}");
            for path in [
                "/new/v2.0/projects".to_owned(),
                format!("/new/v2.0/analytics?projectId={project}&limit=100"),
                format!("/new/v2.0/conversations?projectId={project}&limit=100"),
                format!("/new/v2.0/conversations/s1?projectId={project}"),
                "/v2.4/ExecutedSteps?$orderby=executionId".to_owned(),
                "/v2.4/Steps".to_owned(),
                "/v2.4/LiveAgentEscalations".to_owned(),
                "/new/v2.0/users?limit=100".to_owned(),
                format!("/new/v2.0/projects/{project}/members"),
                format!("/new/v2.0/projects/{project}/goals"),
            ] {
                let response = app
                    .with_key(Method::GET, &path, &side.admin_key)
                    .header("Accept", "application/json")
                    .send()
                    .await
                    .unwrap();
                state.push(json!({ "path": path, "status": response.status().as_u16(), "body": response.json::<Json>().await.unwrap() }));
            }
            let store = app.store().await;
            for (_, id) in side.ids.iter().filter(|(name, _)| ["{user}", "{member}"].contains(name)) {
                let keys = store.list_api_keys(ObjectId::parse(id).unwrap()).await.unwrap();
                state.push(json!(keys.iter().map(|k| k.id.to_string()).collect::<Vec<_>>()));
            }
            sides.push(state);
        }
        let store = app.store().await;
        for (_, user) in &self.users {
            let keys = store.list_api_keys(ObjectId::parse(&user.id).unwrap()).await.unwrap();
            sides[0].push(json!(keys.iter().map(|k| k.id.to_string()).collect::<Vec<_>>()));
        }
        let away = sides.pop().unwrap_or_default();
        (sides.pop().unwrap_or_default(), away)
    }
}

async fn send(app: &TestApp, route: &Route, template_side: &Side, key: Option<&str>) -> (u16, Json) {
    let path = template_side.fill(route.path);
    let method = Method::from_bytes(route.method.as_bytes()).unwrap();
    let mut request = app.anonymous(method, &path).header("Accept", "application/json");
    if let Some(key) = key {
        request = request.header("X-API-Key", key);
    }
    if let Some(body) = route.body {
        request = request.header("Content-Type", "application/json").body(template_side.fill(body));
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, if text.is_empty() { Json::Null } else { serde_json::from_str(&text).unwrap_or(Json::String(text)) })
}

/// A side whose ids are the home side's, except `placeholder`, which is taken from `donor` or,
/// without one, is an id nobody has.
fn with_one(home: &Side, placeholder: &str, donor: Option<&Side>) -> Side {
    let ids = home
        .ids
        .iter()
        .map(|(name, id)| {
            if *name != placeholder {
                return (*name, id.clone());
            }
            let replaced = match donor {
                Some(donor) => donor.ids.iter().find(|(n, _)| n == name).unwrap().1.clone(),
                None => ObjectId::generate().to_string(),
            };
            (*name, replaced)
        })
        .collect();
    Side { admin_key: home.admin_key.clone(), ids }
}

fn without_request_specifics(mut body: Json) -> Json {
    if let Some(object) = body.as_object_mut() {
        object.remove("traceId");
        object.remove("instance");
    }
    if let Some(inner) = body.pointer_mut("/error/innererror").and_then(Json::as_object_mut) {
        inner.remove("traceId");
    }
    body
}

/// The error code of a problem body (`code`), or of an OData error (`error.code`, a string).
fn error_code(body: &Json) -> Option<u64> {
    body["code"].as_u64().or_else(|| body["error"]["code"].as_str()?.parse().ok())
}

async fn check(route: Route) {
    let app = spawn_app().await;
    let fixture = Fixture::build(&app).await;
    let name = format!("{} {}", route.method, route.path);
    let home = &fixture.home;
    let bad = "0".repeat(64);
    let mut cases: Vec<(&str, Option<&str>, u16)> = vec![
        ("no credential", None, 401),
        ("a bad credential", Some(&bad), 401),
        ("the other organisation", Some(&fixture.away.admin_key), route.other_organisation),
    ];
    if let Some((who, status)) = route.insufficient {
        cases.push(("an insufficient role", Some(fixture.key(who)), status));
    }
    for (case, key, expected) in cases {
        let before = fixture.snapshot(&app).await;
        let (status, body) = send(&app, &route, home, key).await;
        assert_eq!(status, expected, "{name} with {case}: {body}");
        if status >= 400 {
            let code = if status == 404 { 1002 } else { u64::from(status) };
            assert_eq!(error_code(&body), Some(code), "{name} with {case}: {body}");
        }
        let after = fixture.snapshot(&app).await;
        if case == "the other organisation" {
            let text = without_request_specifics(body.clone()).to_string();
            for (placeholder, id) in &home.ids {
                assert!(
                    !text.contains(id.as_str()),
                    "{name} with {case} shows this organisation's {placeholder}: {text}"
                );
            }
            // The other organisation may change its own data (create its own project, say), never
            // this one's.
            assert_eq!(before.0, after.0, "{name} with {case} changed this organisation");
        } else {
            assert_eq!(before, after, "{name} with {case} changed something");
        }
    }

    let right = fixture.key(route.right);
    for placeholder in PLACEHOLDERS {
        if !route.path.contains(placeholder) && !route.body.is_some_and(|b| b.contains(placeholder)) {
            continue;
        }
        let before = fixture.snapshot(&app).await;
        let foreign = send(&app, &route, &with_one(home, placeholder, Some(&fixture.away)), Some(right)).await;
        let absent = send(&app, &route, &with_one(home, placeholder, None), Some(right)).await;
        assert!(foreign.0 >= 400, "{name} with a foreign {placeholder} answered {}: {}", foreign.0, foreign.1);
        assert_eq!(foreign.0, absent.0, "{name}: a foreign {placeholder} and an absent one differ");
        assert_eq!(without_request_specifics(foreign.1), without_request_specifics(absent.1), "{name}: {placeholder}");
        assert_eq!(before, fixture.snapshot(&app).await, "{name} with a foreign {placeholder} changed something");
    }

    let (status, body) = send(&app, &route, home, Some(right)).await;
    assert_eq!(status, route.success, "{name} with the right role: {body}");
}

/// One line per route.
macro_rules! matrix {
    ($($test:ident: $method:literal $path:literal $body:expr, $right:ident => $success:literal, $insufficient:expr, other $other:literal;)*) => {
        $(
            #[tokio::test]
            async fn $test() {
                check(Route {
                    method: $method,
                    path: $path,
                    body: $body,
                    right: Who::$right,
                    success: $success,
                    insufficient: $insufficient,
                    other_organisation: $other,
                })
                .await
            }
        )*
    };
}

const INGEST: Option<&str> = Some(r#"[{"projectId":"{project}","contactId":"c9","sessionId":"s9","inputId":"i9"}]"#);
const UPDATE: Option<&str> = Some(r#"{"projectId":"{project}","contactId":"c1","properties":{"rating":5}}"#);
const MESSAGE: Option<&str> = Some(
    r#"[{"projectId":"{project}","contactId":"c9","sessionId":"s9","messageId":"m9","type":"input","source":"user"}]"#,
);
const STEP: Option<&str> = Some(
    r#"[{"projectId":"{project}","sessionId":"s9","executionId":"e9","type":"intent","entityReferenceId":"i9","stepLabel":"Nine"}]"#,
);
const ESCALATION: Option<&str> =
    Some(r#"[{"projectId":"{project}","sessionId":"s9","escalationId":"x9","status":"opened"}]"#);
const GOAL: Option<&str> = Some(
    r#"{"name":"Nine","steps":[{"name":"a","type":"start","order":1},{"name":"b","type":"completion","order":2}]}"#,
);
const GOAL_EVENT: Option<&str> = Some(
    r#"[{"projectId":"{project}","sessionId":"s9","eventId":"g9","goalId":"{goal}","stepId":"asked","goalCycleId":"c9"}]"#,
);
const GOAL_PATCH: Option<&str> = Some(r#"{"name":"Renamed"}"#);
const ERASE: Option<&str> = Some(r#"{"contactIds":["c1"]}"#);
const NAME: Option<&str> = Some(r#"{"name":"renamed"}"#);
const MEMBER: Option<&str> = Some(r#"{"userId":"{user}","roles":["basic"]}"#);
const NEW_USER: Option<&str> = Some(r#"{"email":"new@example.com","name":"New","roles":[]}"#);

matrix! {
    update_records: "PATCH" "/new/v2.0/analytics" UPDATE, Analytics => 204, Some((Who::Basic, 403)), other 404;
    ingest_records: "POST" "/new/v2.0/analytics/records" INGEST, Analytics => 201, Some((Who::Basic, 403)), other 404;
    list_records: "GET" "/new/v2.0/analytics?projectId={project}" None, Basic => 200, Some((Who::Plain, 404)), other 404;
    get_record: "GET" "/new/v2.0/analytics/{record}" None, Basic => 200, Some((Who::Plain, 404)), other 404;
    erase_records: "DELETE" "/new/v2.0/analytics/{project}" ERASE, Analytics => 202, Some((Who::Basic, 403)), other 404;
    ingest_messages: "POST" "/new/v2.0/conversations/messages" MESSAGE, Analytics => 201, Some((Who::Basic, 403)), other 404;
    list_conversations: "GET" "/new/v2.0/conversations?projectId={project}" None, Basic => 200, Some((Who::Plain, 404)), other 404;
    read_conversation: "GET" "/new/v2.0/conversations/s1?projectId={project}" None, Basic => 200, Some((Who::Plain, 404)), other 404;
    delete_conversation: "DELETE" "/new/v2.0/conversations/s1?projectId={project}" None, Analytics => 200, Some((Who::Basic, 403)), other 404;
    odata_conversations: "GET" "/v2.4/Conversations" None, Admin => 200, Some((Who::Analytics, 403)), other 200;
    odata_sessions: "GET" "/v2.4/Sessions" None, Admin => 200, Some((Who::Analytics, 403)), other 200;
    ingest_steps: "POST" "/new/v2.0/analytics/steps" STEP, Analytics => 201, Some((Who::Basic, 403)), other 404;
    odata_executed_steps: "GET" "/v2.4/ExecutedSteps" None, Admin => 200, Some((Who::Analytics, 403)), other 200;
    odata_steps: "GET" "/v2.4/Steps" None, Admin => 200, Some((Who::Analytics, 403)), other 200;
    odata_v23_steps: "GET" "/v2.3/ExecutedSteps" None, Admin => 200, Some((Who::Analytics, 403)), other 200;
    ingest_escalations: "POST" "/new/v2.0/analytics/escalations" ESCALATION, Analytics => 201, Some((Who::Basic, 403)), other 404;
    odata_escalations: "GET" "/v2.4/LiveAgentEscalations" None, Admin => 200, Some((Who::Analytics, 403)), other 200;
    create_goal: "POST" "/new/v2.0/projects/{project}/goals" GOAL, ProjectAdmin => 201, Some((Who::Analytics, 403)), other 404;
    list_goals: "GET" "/new/v2.0/projects/{project}/goals" None, Basic => 200, Some((Who::Plain, 404)), other 404;
    read_goal: "GET" "/new/v2.0/projects/{project}/goals/{goal}" None, Basic => 200, Some((Who::Plain, 404)), other 404;
    change_goal: "PATCH" "/new/v2.0/projects/{project}/goals/{goal}" GOAL_PATCH, ProjectAdmin => 200, Some((Who::Analytics, 403)), other 404;
    delete_goal: "DELETE" "/new/v2.0/projects/{project}/goals/{goal}" None, ProjectAdmin => 204, Some((Who::Analytics, 403)), other 404;
    odata_goals: "GET" "/v2.4/Goals" None, Admin => 200, Some((Who::Analytics, 403)), other 200;
    odata_goal_steps: "GET" "/v2.4/GoalSteps" None, Admin => 200, Some((Who::Analytics, 403)), other 200;
    odata_goal_step_metrics: "GET" "/v2.4/GoalStepMetrics" None, Admin => 200, Some((Who::Analytics, 403)), other 200;
    ingest_goal_events: "POST" "/new/v2.0/analytics/goalevents" GOAL_EVENT, Analytics => 201, Some((Who::Basic, 403)), other 404;
    odata_goal_events: "GET" "/v2.4/GoalEvents" None, Admin => 200, Some((Who::Analytics, 403)), other 200;
    odata_goal_cycles: "GET" "/v2.4/GoalCycles" None, Admin => 200, Some((Who::Analytics, 403)), other 200;
    odata_v23_sessions: "GET" "/v2.3/Sessions" None, Admin => 200, Some((Who::Analytics, 403)), other 200;
    odata_collection: "GET" "/v2.4/Analytics" None, Admin => 200, Some((Who::Analytics, 403)), other 200;
    odata_count: "GET" "/v2.4/Analytics/$count" None, Admin => 200, Some((Who::Analytics, 403)), other 200;
    odata_record: "GET" "/v2.4/Analytics('{record}')" None, Admin => 200, Some((Who::Analytics, 403)), other 404;
    odata_v23_collection: "GET" "/v2.3/Analytics" None, Admin => 200, Some((Who::Analytics, 403)), other 200;
    create_project: "POST" "/new/v2.0/projects" NAME, Admin => 201, Some((Who::ProjectAdmin, 403)), other 201;
    list_projects: "GET" "/new/v2.0/projects" None, Plain => 200, None, other 200;
    get_project: "GET" "/new/v2.0/projects/{project}" None, Basic => 200, Some((Who::Plain, 404)), other 404;
    update_project: "PATCH" "/new/v2.0/projects/{project}" NAME, ProjectAdmin => 200, Some((Who::Analytics, 403)), other 404;
    delete_project: "DELETE" "/new/v2.0/projects/{project}" None, ProjectAdmin => 204, Some((Who::Analytics, 403)), other 404;
    set_member: "POST" "/new/v2.0/projects/{project}/members" MEMBER, ProjectAdmin => 201, Some((Who::Analytics, 403)), other 404;
    list_members: "GET" "/new/v2.0/projects/{project}/members" None, ProjectAdmin => 200, Some((Who::Analytics, 403)), other 404;
    remove_member: "DELETE" "/new/v2.0/projects/{project}/members/{member}" None, ProjectAdmin => 204, Some((Who::Analytics, 403)), other 404;
    create_user: "POST" "/new/v2.0/users" NEW_USER, Admin => 201, Some((Who::ProjectAdmin, 403)), other 201;
    list_users: "GET" "/new/v2.0/users" None, Admin => 200, Some((Who::ProjectAdmin, 403)), other 200;
    delete_user: "DELETE" "/new/v2.0/users/{user}" None, Admin => 204, Some((Who::ProjectAdmin, 403)), other 404;
    create_api_key: "POST" "/new/v2.0/users/me/apikeys" NAME, ApiKeys => 201, Some((Who::Plain, 403)), other 201;
    list_api_keys: "GET" "/new/v2.0/users/me/apikeys" None, ApiKeys => 200, Some((Who::Plain, 403)), other 200;
    revoke_api_key: "DELETE" "/new/v2.0/users/me/apikeys/{key}" None, ApiKeys => 204, Some((Who::Plain, 403)), other 404;
}
