//! Executed steps over HTTP (docs/contract/conversations.md, "Steps and ExecutedSteps"): ingest
//! and its errors, the parents and paths parley derives whatever the order of arrival, the step
//! catalogue, and erasure of a contact's steps down to the database file.

use reqwest::{Method, StatusCode};
use serde_json::{Value as Json, json};

use crate::helpers::{
    Engine, TestApp, assert_problem, assert_row_refused, erase_and_wait, odata_values as odata, on_both_engines,
    spawn_app_on,
};

const STEPS: &str = "/new/v2.0/analytics/steps";

on_both_engines!(
    steps_are_ingested_idempotently_and_make_paths_parents_and_the_catalogue,
    a_refused_batch_names_its_row_and_keeps_nothing,
    erasing_a_contact_takes_their_steps_even_those_that_do_not_name_them,
);

fn step(project: &str, session: &str, execution: &str, entity: &str, label: &str, at: &str) -> Json {
    json!({"projectId": project, "userId": "c1", "sessionId": session, "executionId": execution,
           "entityReferenceId": entity, "stepLabel": label, "type": "node", "timestamp": at})
}

async fn send(app: &TestApp, body: &Json) -> (StatusCode, Json) {
    let response = app.request(Method::POST, STEPS).header("Accept", "application/json").json(body).send().await;
    let response = response.unwrap();
    (response.status(), response.json().await.unwrap())
}

/// `(executionId, parentStep)` of every executed step, by execution id.
async fn parents(app: &TestApp) -> Vec<(String, Json)> {
    let steps = odata(app, "/v2.4/ExecutedSteps?$orderby=executionId&$select=executionId,parentStep").await;
    steps.iter().map(|s| (s["executionId"].as_str().unwrap().to_owned(), s["parentStep"].clone())).collect()
}

async fn steps_are_ingested_idempotently_and_make_paths_parents_and_the_catalogue(engine: Engine) {
    let app = spawn_app_on(engine).await;
    let project = app.create_project().await;
    // The second and third steps arrive first; the first arrives last, in a batch of its own.
    let later = json!([
        step(&project, "s1", "e3", "goodbye", "Goodbye", "2024-05-01T12:00:03.000Z"),
        step(&project, "s1", "e2", "ask", "Ask", "2024-05-01T12:00:02.000Z"),
    ]);
    let (status, body) = send(&app, &later).await;
    assert_eq!((status, body), (StatusCode::CREATED, json!({"inserted": 2, "duplicates": 0, "dropped": 0})));
    let (status, body) = send(&app, &later).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"inserted": 0, "duplicates": 2, "dropped": 0})));
    assert_eq!(parents(&app).await, [("e2".into(), Json::Null), ("e3".into(), json!("ask"))]);

    // The first step, without a contact, and a client's own parent on a fourth.
    let mut first = step(&project, "s1", "e1", "greeting", "Hello", "2024-05-01T12:00:01.000Z");
    first.as_object_mut().unwrap().remove("userId");
    let mut own = step(&project, "s1", "e4", "ask", "Ask again", "2024-05-01T12:00:04.000Z");
    own["parentStep"] = json!("somewhere-else");
    let (status, _) = send(&app, &json!([first, own])).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        parents(&app).await,
        [
            ("e1".into(), Json::Null),
            ("e2".into(), json!("greeting")),
            ("e3".into(), json!("ask")),
            ("e4".into(), json!("somewhere-else"))
        ],
        "a late earlier step becomes its successor's parent; a parent the client sent stays"
    );

    let session = &odata(&app, "/v2.4/Sessions?$filter=sessionId eq 's1'").await[0];
    assert_eq!(session["stepsCount"], 4);
    assert_eq!(session["stepPath"], "greeting,ask,goodbye,ask");
    assert_eq!(session["startedAt"], "2024-05-01T12:00:01.000Z");
    assert_eq!(session["lastActivityAt"], "2024-05-01T12:00:04.000Z");
    assert_eq!(session["userId"], "c1", "from the earliest step that names the contact");
    assert_eq!((session["inputsCount"].clone(), session["messagesCount"].clone()), (json!(0), json!(0)));

    // The catalogue: one step per entity, with the label of its latest execution.
    let catalogue = odata(&app, "/v2.4/Steps?$orderby=entityReferenceId").await;
    let labels: Vec<(Json, Json)> =
        catalogue.iter().map(|s| (s["entityReferenceId"].clone(), s["label"].clone())).collect();
    assert_eq!(
        labels,
        [(json!("ask"), json!("Ask again")), (json!("goodbye"), json!("Goodbye")), (json!("greeting"), json!("Hello"))]
    );
    assert!(catalogue.iter().all(|s| s["projectId"] == json!(project) && s["type"] == "node"));
    // An older execution arriving late does not take the label back.
    let old = step(&project, "s2", "e0", "ask", "Ask (old)", "2024-04-01T00:00:00.000Z");
    assert_eq!(send(&app, &json!([old])).await.0, StatusCode::CREATED);
    let ask = odata(&app, "/v2.4/Steps?$filter=entityReferenceId eq 'ask'").await;
    assert_eq!(ask[0]["label"], "Ask again");
    // Over /v2.3 the key is `_id`.
    let v23 = odata(&app, "/v2.3/ExecutedSteps?$filter=executionId eq 'e1'").await;
    assert!(v23[0]["_id"].is_string() && v23[0].get("id").is_none(), "{}", v23[0]);

    // NDJSON, and a project that collects no analytics drops its steps.
    let silent = app.create_project_with_settings(json!({"collectAnalytics": false})).await;
    let ndjson = format!(
        "{}\n{}\n",
        step(&project, "s3", "e9", "greeting", "Hello", "2024-05-01T13:00:00.000Z"),
        step(&silent, "s3", "e9", "greeting", "Hello", "2024-05-01T13:00:00.000Z"),
    );
    let response = app
        .request(Method::POST, STEPS)
        .header("Content-Type", "application/x-ndjson")
        .header("Accept", "application/json")
        .body(ndjson)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.json::<Json>().await.unwrap(), json!({"inserted": 1, "duplicates": 0, "dropped": 1}));
    assert_eq!(odata(&app, "/v2.4/ExecutedSteps").await.len(), 6);
}

async fn a_refused_batch_names_its_row_and_keeps_nothing(engine: Engine) {
    let app = spawn_app_on(engine).await;
    let project = app.create_project().await;
    let good = step(&project, "s", "ok", "n", "Fine", "2024-05-01T12:00:00.000Z");
    let with = |field: &str, value: Json| {
        let mut row = good.clone();
        row["executionId"] = json!("bad");
        match value {
            Json::Null => drop(row.as_object_mut().unwrap().remove(field)),
            value => row[field] = value,
        }
        row
    };
    let bad_rows = [
        (with("executionId", Json::Null), "executionId", 1000),
        (with("stepLabel", Json::Null), "stepLabel", 1000),
        (with("entityReferenceId", Json::Null), "entityReferenceId", 1000),
        (with("type", json!("flow")), "type", 1005),
        (with("stepLabel", json!("x".repeat(129))), "stepLabel", 1005),
        (with("timestamp", json!("noon")), "timestamp", 1005),
        (with("contactId", json!("c")), "contactId", 1005),
    ];
    for (bad, field, code) in bad_rows {
        assert_row_refused(&app, STEPS, &good, &bad, code, field).await;
    }
    let mut foreign = good.clone();
    foreign["projectId"] = json!("5f0c6bc4ad4f8b0011b2e0e1");
    let response = app.request(Method::POST, STEPS).json(&json!([good, foreign])).send().await.unwrap();
    let problem = assert_problem(response, 404, 1002, STEPS).await;
    assert_eq!(
        (problem["details"]["index"].clone(), problem["details"]["field"].clone()),
        (json!(1), json!("projectId"))
    );
    assert!(odata(&app, "/v2.4/ExecutedSteps").await.is_empty(), "nothing of a refused batch is kept");
    assert!(odata(&app, "/v2.4/Steps").await.is_empty());
    assert!(odata(&app, "/v2.4/Sessions").await.is_empty());
}

async fn erasing_a_contact_takes_their_steps_even_those_that_do_not_name_them(engine: Engine) {
    let on_sqlite = matches!(engine, Engine::Sqlite);
    let mut app = spawn_app_on(engine).await;
    let project = app.create_project().await;
    let message = json!([{"projectId": project, "contactId": "subject-3c9d", "sessionId": "s-doomed",
                          "messageId": "m1", "type": "input", "source": "user", "timestamp": "2024-05-01T12:00:00.000Z"}]);
    let said = app.request(Method::POST, "/new/v2.0/conversations/messages").json(&message).send().await.unwrap();
    assert_eq!(said.status(), StatusCode::CREATED);
    let mut named = step(&project, "s-doomed", "e1", "n1", "STEP-LABEL-77ae", "2024-05-01T12:00:01.000Z");
    named["userId"] = json!("subject-3c9d");
    let mut unnamed = step(&project, "s-doomed", "EXEC-ID-0b4e", "n2", "Two", "2024-05-01T12:00:02.000Z");
    unnamed.as_object_mut().unwrap().remove("userId");
    let kept = step(&project, "s-kept", "e3", "n1", "One", "2024-05-01T12:00:00.000Z");
    assert_eq!(send(&app, &json!([named, unnamed, kept])).await.0, StatusCode::CREATED);

    let status = erase_and_wait(&app, &project, json!({"contactIds": ["subject-3c9d"]})).await;
    assert_eq!((status["status"].clone(), status["deleted"].clone()), (json!("done"), json!(3)));
    let left = odata(&app, "/v2.4/ExecutedSteps").await;
    assert_eq!(left.iter().map(|s| s["executionId"].clone()).collect::<Vec<_>>(), [json!("e3")]);
    let sessions = odata(&app, "/v2.4/Sessions").await;
    assert_eq!(sessions.iter().map(|s| s["sessionId"].clone()).collect::<Vec<_>>(), [json!("s-kept")]);
    if on_sqlite {
        app.stop().await;
        let disk = app.on_disk();
        for secret in ["subject-3c9d", "EXEC-ID-0b4e"] {
            assert!(!disk.windows(secret.len()).any(|w| w == secret.as_bytes()), "{secret} is still on disk");
        }
    }
}
