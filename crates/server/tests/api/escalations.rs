//! Escalations over HTTP (docs/contract/conversations.md, "LiveAgentEscalations"): writes merged
//! by event time whatever the order they arrive in, the counts an ingest answers, the sessions'
//! handover counts, errors, and erasure.

use reqwest::{Method, StatusCode};
use serde_json::{Value as Json, json};

use crate::helpers::{
    Engine, TestApp, assert_problem, assert_row_refused, erase_and_wait, odata_values as odata, on_both_engines,
    record, spawn_app_on,
};

const ESCALATIONS: &str = "/new/v2.0/analytics/escalations";

on_both_engines!(
    writes_merge_by_event_time_in_any_order_and_count_in_sessions,
    a_refused_batch_names_its_row_and_keeps_nothing,
    erasing_a_contact_takes_their_escalations,
);

fn write(project: &str, id: &str, status: &str, at: &str) -> Json {
    json!({"projectId": project, "sessionId": "s1", "escalationId": id, "contactId": "c1", "status": status,
           "timestamp": at})
}

async fn send(app: &TestApp, body: &Json) -> (StatusCode, Json) {
    let response = app.request(Method::POST, ESCALATIONS).header("Accept", "application/json").json(body).send().await;
    let response = response.unwrap();
    (response.status(), response.json().await.unwrap())
}

async fn writes_merge_by_event_time_in_any_order_and_count_in_sessions(engine: Engine) {
    let app = spawn_app_on(engine).await;
    let project = app.create_project().await;
    // A record of the session says 5 handovers; once parley keeps escalations, they count.
    let mut said = record(&project, "c1", "s1", "i1");
    said["handoverEscalations"] = json!(5);
    said["timestamp"] = json!("2024-05-01T11:59:00.000Z");
    app.ingest_new(&[said]).await;
    assert_eq!(odata(&app, "/v2.4/Sessions").await[0]["handoverEscalations"], 5);

    // The resolution arrives first, then the opening, then the assignment.
    let mut resolved = write(&project, "x1", "resolved", "2024-05-01T12:09:00.000Z");
    resolved["resolvedAt"] = json!("2024-05-01T12:09:00.000Z");
    let (status, body) = send(&app, &json!([resolved])).await;
    let counts = json!({"inserted": 1, "duplicates": 0, "dropped": 0, "updated": 0});
    assert_eq!((status, body), (StatusCode::CREATED, counts));
    let mut opened = write(&project, "x1", "opened", "2024-05-01T12:00:00.000Z");
    opened["inboxName"] = json!("Support");
    opened["channel"] = json!("webchat");
    opened["labels"] = json!(["billing", "vip"]);
    let mut assigned = write(&project, "x1", "assigned", "2024-05-01T12:01:00.000Z");
    assigned["agentName"] = json!("Ann");
    assigned["assignedAt"] = json!("2024-05-01T12:01:00.000Z");
    assigned["channel"] = json!("voice");
    let (status, body) = send(&app, &json!([opened, assigned])).await;
    let counts = json!({"inserted": 0, "duplicates": 0, "dropped": 0, "updated": 2});
    assert_eq!((status, body), (StatusCode::OK, counts));
    // Sent again: nothing changes.
    let (status, body) = send(&app, &json!([opened, resolved])).await;
    let counts = json!({"inserted": 0, "duplicates": 2, "dropped": 0, "updated": 0});
    assert_eq!((status, body), (StatusCode::OK, counts));

    let rows = odata(&app, "/v2.4/LiveAgentEscalations").await;
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(row["status"], "resolved", "a late, older write never undoes a newer status");
    assert_eq!(row["timestamp"], "2024-05-01T12:00:00.000Z", "the row reads as opened");
    assert_eq!((row["agentName"].clone(), row["inboxName"].clone()), (json!("Ann"), json!("Support")));
    assert_eq!(row["channel"], "voice", "from the latest write that names it");
    assert_eq!(row["labels"], json!(["billing", "vip"]));
    assert_eq!(
        (row["assignedAt"].clone(), row["resolvedAt"].clone()),
        (json!("2024-05-01T12:01:00.000Z"), json!("2024-05-01T12:09:00.000Z"))
    );
    let session = &odata(&app, "/v2.4/Sessions").await[0];
    assert_eq!(session["handoverEscalations"], 1, "the escalations count, not the record's number");
    assert_eq!(session["lastActivityAt"], "2024-05-01T12:00:00.000Z");
    assert_eq!(session["channel"], "voice");

    // A newer write reopens it; a second escalation counts; NDJSON works; a project that collects
    // no analytics drops them.
    let silent = app.create_project_with_settings(json!({"collectAnalytics": false})).await;
    let ndjson = format!(
        "{}\n{}\n{}\n",
        write(&project, "x1", "opened", "2024-05-01T13:00:00.000Z"),
        write(&project, "x2", "opened", "2024-05-01T13:05:00.000Z"),
        write(&silent, "x1", "opened", "2024-05-01T13:05:00.000Z"),
    );
    let response = app
        .request(Method::POST, ESCALATIONS)
        .header("Content-Type", "application/x-ndjson")
        .header("Accept", "application/json")
        .body(ndjson)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let counts = json!({"inserted": 1, "duplicates": 0, "dropped": 1, "updated": 1});
    assert_eq!(response.json::<Json>().await.unwrap(), counts);
    let rows = odata(&app, "/v2.4/LiveAgentEscalations?$orderby=escalationId").await;
    assert_eq!(rows[0]["status"], "opened");
    assert_eq!(rows[0]["resolvedAt"], "2024-05-01T12:09:00.000Z", "a field the newer write leaves out stays");
    let session = &odata(&app, "/v2.4/Sessions").await[0];
    assert_eq!(session["handoverEscalations"], 2);
    assert_eq!(session["lastActivityAt"], "2024-05-01T13:05:00.000Z");
    let v23 = odata(&app, "/v2.3/LiveAgentEscalations").await;
    assert!(v23.iter().all(|row| row["_id"].is_string()), "{v23:?}");
}

async fn a_refused_batch_names_its_row_and_keeps_nothing(engine: Engine) {
    let app = spawn_app_on(engine).await;
    let project = app.create_project().await;
    let good = write(&project, "ok", "opened", "2024-05-01T12:00:00.000Z");
    let with = |field: &str, value: Json| {
        let mut row = write(&project, "bad", "opened", "2024-05-01T12:00:00.000Z");
        match value {
            Json::Null => drop(row.as_object_mut().unwrap().remove(field)),
            value => row[field] = value,
        }
        row
    };
    let bad_rows = [
        (with("escalationId", Json::Null), "escalationId", 1000),
        (with("status", Json::Null), "status", 1000),
        (with("sessionId", Json::Null), "sessionId", 1000),
        (with("status", json!("closed")), "status", 1005),
        (with("labels", json!("billing")), "labels", 1005),
        (with("assignedAt", json!("soon")), "assignedAt", 1005),
        (with("userId", json!("c")), "userId", 1005),
    ];
    for (bad, field, code) in bad_rows {
        assert_row_refused(&app, ESCALATIONS, &good, &bad, code, field).await;
    }
    let mut foreign = good.clone();
    foreign["projectId"] = json!("5f0c6bc4ad4f8b0011b2e0e1");
    let response = app.request(Method::POST, ESCALATIONS).json(&json!([good, foreign])).send().await.unwrap();
    let problem = assert_problem(response, 404, 1002, ESCALATIONS).await;
    assert_eq!(
        (problem["details"]["index"].clone(), problem["details"]["field"].clone()),
        (json!(1), json!("projectId"))
    );
    assert!(odata(&app, "/v2.4/LiveAgentEscalations").await.is_empty(), "nothing of a refused batch is kept");
    assert!(odata(&app, "/v2.4/Sessions").await.is_empty());
}

async fn erasing_a_contact_takes_their_escalations(engine: Engine) {
    let on_sqlite = matches!(engine, Engine::Sqlite);
    let mut app = spawn_app_on(engine).await;
    let project = app.create_project().await;
    app.ingest_new(&[record(&project, "subject-5e1f", "s-doomed", "i1")]).await;
    let mut named = write(&project, "x1", "opened", "2024-05-01T12:00:00.000Z");
    named["sessionId"] = json!("s-doomed");
    named["contactId"] = json!("subject-5e1f");
    let mut unnamed = write(&project, "ESC-ID-93d2", "opened", "2024-05-01T12:00:00.000Z");
    unnamed["sessionId"] = json!("s-doomed");
    unnamed.as_object_mut().unwrap().remove("contactId");
    let kept = write(&project, "x3", "opened", "2024-05-01T12:00:00.000Z");
    assert_eq!(send(&app, &json!([named, unnamed, kept])).await.0, StatusCode::CREATED);

    let status = erase_and_wait(&app, &project, json!({"contactIds": ["subject-5e1f"]})).await;
    assert_eq!((status["status"].clone(), status["deleted"].clone()), (json!("done"), json!(3)));
    let left = odata(&app, "/v2.4/LiveAgentEscalations").await;
    assert_eq!(left.iter().map(|s| s["escalationId"].clone()).collect::<Vec<_>>(), [json!("x3")]);
    let sessions = odata(&app, "/v2.4/Sessions").await;
    assert_eq!(sessions.iter().map(|s| s["sessionId"].clone()).collect::<Vec<_>>(), [json!("s1")]);
    if on_sqlite {
        app.stop().await;
        let disk = app.on_disk();
        for secret in ["subject-5e1f", "ESC-ID-93d2"] {
            assert!(!disk.windows(secret.len()).any(|w| w == secret.as_bytes()), "{secret} is still on disk");
        }
    }
}
