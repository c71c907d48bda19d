//! Goal events over HTTP (docs/contract/conversations.md, "Goals"): each event recorded under its
//! goal's version and step type, the cycles they make up, the sessions' `goals` through late
//! writes, renames and deletions, every refusal with the row it names, and erasure.

use reqwest::{Method, StatusCode};
use serde_json::{Value as Json, json};

use crate::helpers::{
    Engine, TestApp, assert_problem, assert_row_refused, call, erase_and_wait, odata_values as odata, on_both_engines,
    record, spawn_app_on,
};

const EVENTS: &str = "/new/v2.0/analytics/goalevents";

on_both_engines!(
    events_make_cycles_and_the_goals_sessions_completed,
    a_refused_batch_names_its_row_and_keeps_nothing,
    erasing_a_contact_takes_their_goal_events,
);

/// Creates a goal whose steps have the ids and types given, and answers its id and version.
async fn define(app: &TestApp, project: &str, name: &str, steps: &[(&str, &str)]) -> (String, String) {
    let steps: Vec<Json> = steps
        .iter()
        .enumerate()
        .map(|(order, (id, kind))| json!({"stepId": id, "name": id, "type": kind, "order": order}))
        .collect();
    let path = format!("/new/v2.0/projects/{project}/goals");
    let (status, goal) = call(app, Method::POST, &path, Some(&json!({"name": name, "steps": steps}))).await;
    assert_eq!(status, StatusCode::CREATED, "{goal}");
    (goal["_id"].as_str().unwrap().to_owned(), goal["version"].as_str().unwrap().to_owned())
}

fn event(project: &str, goal: &str, id: &str, session: &str, cycle: &str, step: &str, at: &str) -> Json {
    json!({"projectId": project, "goalId": goal, "eventId": id, "sessionId": session, "contactId": "c1",
           "goalCycleId": cycle, "stepId": step, "timestamp": at, "channel": "webchat"})
}

fn at(minute: u32) -> String {
    format!("2024-05-01T12:{minute:02}:00.000Z")
}

/// Each session's `goals`, by session id.
async fn session_goals(app: &TestApp) -> Vec<(Json, Json)> {
    let sessions = odata(app, "/v2.4/Sessions?$orderby=sessionId").await;
    sessions.iter().map(|s| (s["sessionId"].clone(), s["goals"].clone())).collect()
}

async fn events_make_cycles_and_the_goals_sessions_completed(engine: Engine) {
    let app = spawn_app_on(engine).await;
    let project = app.create_project().await;
    let (refund, refund_version) =
        define(&app, &project, "Refund", &[("asked", "start"), ("verified", "step"), ("paid", "completion")]).await;
    let (survey, _) = define(&app, &project, "Survey", &[("s-start", "start"), ("s-done", "completion")]).await;
    let p = project.as_str();
    let mut sent_version = event(p, &refund, "e7", "s2", "c3", "asked", &at(30));
    sent_version["version"] = json!("v-from-the-bot");
    let batch = json!([
        event(p, &refund, "e1", "s1", "c1", "asked", &at(0)),
        event(p, &refund, "e2", "s1", "c1", "verified", &at(1)),
        event(p, &refund, "e3", "s1", "c1", "paid", &at(5)),
        event(p, &survey, "e4", "s1", "k1", "s-start", &at(2)),
        event(p, &survey, "e5", "s1", "k1", "s-done", &at(3)),
        event(p, &refund, "e6", "s2", "c2", "asked", &at(20)),
        sent_version,
        event(p, &refund, "e8", "s2", "c2", "verified", &at(21)),
    ]);
    let (status, counts) = call(&app, Method::POST, EVENTS, Some(&batch)).await;
    assert_eq!((status, counts), (StatusCode::CREATED, json!({"inserted": 8, "duplicates": 0, "dropped": 0})));
    let (status, counts) = call(&app, Method::POST, EVENTS, Some(&batch)).await;
    assert_eq!((status, counts), (StatusCode::OK, json!({"inserted": 0, "duplicates": 8, "dropped": 0})));

    let events = odata(&app, "/v2.4/GoalEvents?$orderby=eventId").await;
    let seen: Vec<(Json, Json)> = events.iter().map(|e| (e["stepType"].clone(), e["version"].clone())).collect();
    let v = json!(refund_version);
    assert_eq!(seen[0], (json!("start"), v.clone()));
    assert_eq!(seen[2], (json!("completion"), v.clone()));
    assert_eq!(seen[6], (json!("start"), json!("v-from-the-bot")), "a version the client sent is kept");
    assert_eq!((events[7]["organisationId"].is_string(), events[7]["channel"].clone()), (true, json!("webchat")));

    let cycles = |rows: Vec<Json>| -> Vec<(Json, Json, Json, Json)> {
        rows.iter()
            .map(|c| {
                (c["goalCycleId"].clone(), c["status"].clone(), c["eventsCount"].clone(), c["completedAt"].clone())
            })
            .collect()
    };
    assert_eq!(
        cycles(odata(&app, "/v2.4/GoalCycles?$orderby=goalCycleId").await),
        [
            (json!("c1"), json!("completed"), json!(3), json!(at(5))),
            (json!("c2"), json!("partial"), json!(2), Json::Null),
            (json!("c3"), json!("incomplete"), json!(1), Json::Null),
            (json!("k1"), json!("completed"), json!(2), json!(at(3))),
        ]
    );
    let completed = odata(
        &app,
        "/v2.4/GoalCycles?$filter=status eq 'completed' and goalId eq '{refund}'".replace("{refund}", &refund).as_str(),
    )
    .await;
    assert_eq!((completed.len(), completed[0]["sessionId"].clone()), (1, json!("s1")));
    assert_eq!(session_goals(&app).await, [(json!("s1"), json!("Survey, Refund")), (json!("s2"), json!(""))]);
    let s1 = &odata(&app, "/v2.4/Sessions?$filter=sessionId eq 's1'").await[0];
    assert_eq!((s1["startedAt"].clone(), s1["channel"].clone()), (json!(at(0)), json!("webchat")));

    // Late writes: an earlier completion of c2, and a completion of the refund in s1 before the
    // survey's.
    let late = json!([
        event(p, &refund, "e9", "s2", "c2", "paid", "2024-05-01T11:00:00.000Z"),
        event(p, &refund, "e10", "s1", "c4", "paid", "2024-05-01T11:59:00.000Z"),
    ]);
    assert_eq!(call(&app, Method::POST, EVENTS, Some(&late)).await.0, StatusCode::CREATED);
    assert_eq!(session_goals(&app).await, [(json!("s1"), json!("Refund, Survey")), (json!("s2"), json!("Refund"))]);
    let c2 = odata(&app, "/v2.4/GoalCycles?$filter=goalCycleId eq 'c2'").await;
    assert_eq!(
        (c2[0]["status"].clone(), c2[0]["startedAt"].clone()),
        (json!("completed"), json!("2024-05-01T11:00:00.000Z"))
    );

    // A renamed goal is renamed in the sessions; a changed definition leaves recorded events be.
    let goal_path = |id: &str| format!("/new/v2.0/projects/{project}/goals/{id}");
    let steps = json!([{"stepId": "asked", "name": "Asked", "type": "start", "order": 1},
                       {"stepId": "paid", "name": "Paid", "type": "completion", "order": 2}]);
    let (status, changed) =
        call(&app, Method::PATCH, &goal_path(&refund), Some(&json!({"name": "Refunds", "steps": steps}))).await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(session_goals(&app).await, [(json!("s1"), json!("Refunds, Survey")), (json!("s2"), json!("Refunds"))]);
    let e2 = &odata(&app, "/v2.4/GoalEvents?$filter=eventId eq 'e2'").await[0];
    assert_eq!((e2["stepType"].clone(), e2["version"].clone()), (json!("step"), v.clone()));
    // A step the goal no longer has is refused from now on; a new event takes the new version.
    let gone_step = json!([event(p, &refund, "e11", "s3", "c5", "verified", &at(40))]);
    let (status, problem) = call(&app, Method::POST, EVENTS, Some(&gone_step)).await;
    assert_eq!((status, problem["details"]["field"].clone()), (StatusCode::BAD_REQUEST, json!("stepId")), "{problem}");
    let fresh = json!([event(p, &refund, "e11", "s3", "c5", "asked", &at(40))]);
    assert_eq!(call(&app, Method::POST, EVENTS, Some(&fresh)).await.0, StatusCode::CREATED);
    let e11 = &odata(&app, "/v2.4/GoalEvents?$filter=eventId eq 'e11'").await[0];
    assert_eq!(e11["version"], changed["version"]);

    // Deleting a goal deletes its events and its cycles; sessions left without rows go.
    assert_eq!(call(&app, Method::DELETE, &goal_path(&survey), None).await.0, StatusCode::NO_CONTENT);
    assert!(odata(&app, &format!("/v2.4/GoalEvents?$filter=goalId eq '{survey}'")).await.is_empty());
    assert!(odata(&app, "/v2.4/GoalCycles?$filter=goalCycleId eq 'k1'").await.is_empty());
    assert_eq!(session_goals(&app).await[0], (json!("s1"), json!("Refunds")));
    let s1 = &odata(&app, "/v2.4/Sessions?$filter=sessionId eq 's1'").await[0];
    assert_eq!(s1["startedAt"], "2024-05-01T11:59:00.000Z", "derived from the events that are left");
    assert_eq!(call(&app, Method::DELETE, &goal_path(&refund), None).await.0, StatusCode::NO_CONTENT);
    assert!(odata(&app, "/v2.4/GoalEvents").await.is_empty());
    assert!(odata(&app, "/v2.4/Sessions").await.is_empty());
    // Events of a deleted goal are refused.
    let (status, problem) = call(&app, Method::POST, EVENTS, Some(&fresh)).await;
    assert_eq!((status, problem["details"]["field"].clone()), (StatusCode::BAD_REQUEST, json!("goalId")), "{problem}");
}

async fn a_refused_batch_names_its_row_and_keeps_nothing(engine: Engine) {
    let app = spawn_app_on(engine).await;
    let project = app.create_project().await;
    let (goal, _) = define(&app, &project, "Order", &[("o-start", "start"), ("o-done", "completion")]).await;
    let other_project = app.create_project().await;
    let (foreign_goal, _) =
        define(&app, &other_project, "Elsewhere", &[("x-start", "start"), ("x-done", "completion")]).await;
    let good = event(&project, &goal, "ok", "s1", "c1", "o-start", &at(0));
    let with = |field: &str, value: Json| {
        let mut row = event(&project, &goal, "bad", "s1", "c1", "o-done", &at(1));
        match value {
            Json::Null => drop(row.as_object_mut().unwrap().remove(field)),
            value => row[field] = value,
        }
        row
    };
    let bad_rows = [
        (with("eventId", Json::Null), "eventId", 1000),
        (with("goalId", Json::Null), "goalId", 1000),
        (with("stepId", Json::Null), "stepId", 1000),
        (with("goalCycleId", Json::Null), "goalCycleId", 1000),
        (with("sessionId", Json::Null), "sessionId", 1000),
        (with("goalId", json!("not-an-id")), "goalId", 1005),
        (with("goalId", json!("5f0c6bc4ad4f8b0011b2e0e1")), "goalId", 1005),
        (with("goalId", json!(foreign_goal)), "goalId", 1005),
        (with("stepId", json!("x-done")), "stepId", 1005),
        (with("timestamp", json!("soon")), "timestamp", 1005),
        (with("outcome", json!("won")), "outcome", 1005),
    ];
    for (bad, field, code) in bad_rows {
        assert_row_refused(&app, EVENTS, &good, &bad, code, field).await;
    }
    let mut foreign = good.clone();
    foreign["projectId"] = json!("5f0c6bc4ad4f8b0011b2e0e1");
    let response = app.request(Method::POST, EVENTS).json(&json!([good, foreign])).send().await.unwrap();
    let problem = assert_problem(response, 404, 1002, EVENTS).await;
    assert_eq!(
        (problem["details"]["index"].clone(), problem["details"]["field"].clone()),
        (json!(1), json!("projectId"))
    );
    assert!(odata(&app, "/v2.4/GoalEvents").await.is_empty(), "nothing of a refused batch is kept");
    assert!(odata(&app, "/v2.4/GoalCycles").await.is_empty());
    assert!(odata(&app, "/v2.4/Sessions").await.is_empty());
}

async fn erasing_a_contact_takes_their_goal_events(engine: Engine) {
    let on_sqlite = matches!(engine, Engine::Sqlite);
    let mut app = spawn_app_on(engine).await;
    let project = app.create_project().await;
    let (goal, _) = define(&app, &project, "Order", &[("o-start", "start"), ("o-done", "completion")]).await;
    app.ingest_new(&[record(&project, "subject-5e1f", "s-doomed", "i1")]).await;
    let mut named = event(&project, &goal, "g1", "s-doomed", "c1", "o-start", &at(0));
    named["contactId"] = json!("subject-5e1f");
    let mut unnamed = event(&project, &goal, "EVENT-ID-93d2", "s-doomed", "c1", "o-done", &at(1));
    unnamed.as_object_mut().unwrap().remove("contactId");
    let kept = event(&project, &goal, "g3", "s1", "c2", "o-done", &at(2));
    assert_eq!(call(&app, Method::POST, EVENTS, Some(&json!([named, unnamed, kept]))).await.0, StatusCode::CREATED);
    assert_eq!(session_goals(&app).await, [(json!("s-doomed"), json!("Order")), (json!("s1"), json!("Order"))]);

    let status = erase_and_wait(&app, &project, json!({"contactIds": ["subject-5e1f"]})).await;
    assert_eq!((status["status"].clone(), status["deleted"].clone()), (json!("done"), json!(3)));
    let left = odata(&app, "/v2.4/GoalEvents").await;
    assert_eq!(left.iter().map(|e| e["eventId"].clone()).collect::<Vec<_>>(), [json!("g3")]);
    assert_eq!(odata(&app, "/v2.4/GoalCycles").await.len(), 1);
    assert_eq!(session_goals(&app).await, [(json!("s1"), json!("Order"))]);
    if on_sqlite {
        app.stop().await;
        let disk = app.on_disk();
        for secret in ["subject-5e1f", "EVENT-ID-93d2"] {
            assert!(!disk.windows(secret.len()).any(|w| w == secret.as_bytes()), "{secret} is still on disk");
        }
    }
}
