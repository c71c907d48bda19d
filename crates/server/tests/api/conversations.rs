//! Conversations over HTTP (docs/contract/conversations.md): message ingest and its errors, the
//! reference SDK's index, transcript and delete calls, the Conversations and Sessions OData sets,
//! and erasure of a contact's messages and sessions down to the database file.

use reqwest::{Method, StatusCode};
use serde_json::{Value as Json, json};

use crate::helpers::{
    Engine, TestApp, assert_invalid, assert_problem, assert_row_refused, erase_and_wait, on_both_engines, record,
    spawn_app_on,
};

const MESSAGES: &str = "/new/v2.0/conversations/messages";

on_both_engines!(
    messages_are_ingested_idempotently_and_shape_their_sessions,
    the_index_filters_searches_and_pages_like_the_sdk_asks,
    a_transcript_reads_in_order_and_expert_mode_adds_the_records,
    deleting_a_transcript_empties_it_at_once_and_keeps_the_session,
    erasing_a_contact_takes_their_messages_and_sessions,
);

fn message(project: &str, session: &str, id: &str, at: &str, text: &str) -> Json {
    json!({"projectId": project, "contactId": "c1", "sessionId": session, "messageId": id, "type": "input",
           "source": "user", "inputText": text, "timestamp": at, "channel": "webchat"})
}

async fn send(app: &TestApp, body: &Json) -> (StatusCode, Json) {
    let response = app.request(Method::POST, MESSAGES).header("Accept", "application/json").json(body).send().await;
    let response = response.unwrap();
    (response.status(), response.json().await.unwrap())
}

async fn get_json(app: &TestApp, path: &str) -> Json {
    let response = app.request(Method::GET, path).header("Accept", "application/json").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    response.json().await.unwrap()
}

async fn index(app: &TestApp, project: &str, query: String) -> Json {
    get_json(app, &format!("/new/v2.0/conversations?projectId={project}{query}")).await
}

async fn sessions(app: &TestApp, filter: &str) -> Vec<Json> {
    let body = get_json(app, &format!("/v2.4/Sessions?$filter={filter}&$orderby=sessionId")).await;
    body["value"].as_array().unwrap().clone()
}

async fn messages_are_ingested_idempotently_and_shape_their_sessions(engine: Engine) {
    let app = spawn_app_on(engine).await;
    let project = app.create_project().await;
    // The bot's answer arrives before the user's input; the record of that input comes last.
    let batch = json!([
        {"projectId": project, "contactId": "c1", "sessionId": "s1", "messageId": "out-1", "type": "output",
         "source": "bot", "inputId": "i1", "inputText": "Hello, how can I help?", "timestamp": "2024-05-01T12:00:02.000Z"},
        message(&project, "s1", "in-1", "2024-05-01T12:00:01.000Z", "I want a refund"),
    ]);
    let (status, body) = send(&app, &batch).await;
    assert_eq!((status, body), (StatusCode::CREATED, json!({"inserted": 2, "duplicates": 0, "dropped": 0})));
    let (status, body) = send(&app, &batch).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"inserted": 0, "duplicates": 2, "dropped": 0})));
    // A message sent twice in one batch is stored once, and counted once in its session.
    let twice = message(&project, "s1", "in-2", "2024-05-01T12:00:01.500Z", "again");
    let (status, body) = send(&app, &json!([twice, twice])).await;
    assert_eq!((status, body), (StatusCode::CREATED, json!({"inserted": 1, "duplicates": 1, "dropped": 0})));
    let mut late = record(&project, "c1", "s1", "i1");
    late["timestamp"] = json!("2024-05-01T12:00:00.500Z");
    late["rating"] = json!(4);
    // Sent twice in one batch: stored once, counted once.
    let response = app.ingest(&[late.clone(), late]).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.json::<Json>().await.unwrap(), json!({"inserted": 1, "duplicates": 1, "dropped": 0}));

    let session = &sessions(&app, "sessionId eq 's1'").await[0];
    assert_eq!(session["messagesCount"], 3);
    assert_eq!(session["inputsCount"], 1);
    assert_eq!(session["startedAt"], "2024-05-01T12:00:00.500Z");
    assert_eq!(session["lastActivityAt"], "2024-05-01T12:00:02.000Z");
    assert_eq!(session["channel"], "webchat");
    assert_eq!(session["rating"], 4.0);
    assert_eq!(session["userId"], "c1");
    assert_eq!(session["projectId"], json!(project));

    // A rating changed through PATCH /analytics is the session's at once.
    let patch = json!({"projectId": project, "contactId": "c1", "inputId": "i1", "properties": {"rating": 1}});
    assert_eq!(app.patch(&patch).await.status(), StatusCode::NO_CONTENT);
    assert_eq!(sessions(&app, "sessionId eq 's1'").await[0]["rating"], 1.0);

    // NDJSON, with a project that does not collect conversations: dropped and counted.
    let silent = app.create_project_with_settings(json!({"collectConversations": false})).await;
    let ndjson = format!(
        "{}\n{}\n",
        message(&project, "s2", "m1", "2024-05-01T13:00:00.000Z", "second session"),
        message(&silent, "s9", "m1", "2024-05-01T13:00:00.000Z", "not kept")
    );
    let response = app
        .request(Method::POST, MESSAGES)
        .header("Content-Type", "application/x-ndjson")
        .header("Accept", "application/json")
        .body(ndjson)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.json::<Json>().await.unwrap(), json!({"inserted": 1, "duplicates": 0, "dropped": 1}));
    let kept = get_json(&app, "/v2.4/Conversations/$count").await;
    assert_eq!(kept, 4);

    // Every error names the row; nothing of a refused batch is stored.
    let bad_rows = [
        (
            json!({"projectId": project, "sessionId": "s", "contactId": "c", "type": "input", "source": "user"}),
            "messageId",
        ),
        (
            json!({"projectId": project, "sessionId": "s", "contactId": "c", "messageId": "m", "type": "query", "source": "user"}),
            "type",
        ),
        (
            json!({"projectId": project, "sessionId": "s", "contactId": "c", "messageId": "m", "type": "input", "source": "robot"}),
            "source",
        ),
        (
            json!({"projectId": project, "sessionId": "s", "contactId": "c", "messageId": "m", "type": "input", "source": "user", "intent": "x"}),
            "intent",
        ),
        (
            json!({"projectId": project, "sessionId": "s", "contactId": "c", "messageId": "m", "type": "input", "source": "user", "inputAttachments": "a.png"}),
            "inputAttachments",
        ),
        (
            json!({"projectId": project, "sessionId": "s", "contactId": "c", "messageId": "m", "type": "input", "source": "user", "timestamp": "noon"}),
            "timestamp",
        ),
    ];
    let good = message(&project, "s3", "ok", "2024-05-01T14:00:00.000Z", "fine");
    for (bad, field) in bad_rows {
        let code = if field == "messageId" { 1000 } else { 1005 };
        assert_row_refused(&app, MESSAGES, &good, &bad, code, field).await;
    }
    let foreign = json!([{"projectId": "5f0c6bc4ad4f8b0011b2e0e1", "sessionId": "s", "contactId": "c",
                          "messageId": "m", "type": "input", "source": "user"}]);
    let response = app.request(Method::POST, MESSAGES).json(&foreign).send().await.unwrap();
    let problem = assert_problem(response, 404, 1002, MESSAGES).await;
    assert_eq!(
        (problem["details"]["index"].clone(), problem["details"]["field"].clone()),
        (json!(0), json!("projectId"))
    );
    let response = app
        .request(Method::POST, MESSAGES)
        .header("Content-Type", "application/x-ndjson")
        .body("{\"a\":\n")
        .send()
        .await;
    let problem = assert_problem(response.unwrap(), 400, 1005, MESSAGES).await;
    assert_eq!(problem["details"]["line"], 1);
    assert_eq!(get_json(&app, "/v2.4/Conversations/$count").await, 4, "nothing of a refused batch is kept");
}

async fn the_index_filters_searches_and_pages_like_the_sdk_asks(engine: Engine) {
    let app = spawn_app_on(engine).await;
    let project = app.create_project().await;
    let mut batch = Vec::new();
    for n in 0..5 {
        let session = format!("s{n}");
        let mut first = message(
            &project,
            &session,
            &format!("{session}-a"),
            &format!("2024-05-0{}T10:00:00.000Z", n + 1),
            "Where is my parcel?",
        );
        first["contactId"] = json!(if n % 2 == 0 { "even" } else { "odd" });
        let mut second = message(
            &project,
            &session,
            &format!("{session}-b"),
            &format!("2024-05-0{}T10:05:00.000Z", n + 1),
            "Thanks, bye",
        );
        second["contactId"] = first["contactId"].clone();
        if n == 3 {
            second["inputText"] = json!("I want a REFUND for order 42");
            second["channel"] = json!("voice");
            second["rating"] = json!(2);
        }
        batch.extend([first, second]);
    }
    assert_eq!(send(&app, &Json::Array(batch)).await.0, StatusCode::CREATED);
    let index = |query: &str| index(&app, &project, query.to_owned());
    let sessions_of = |body: &Json| -> Vec<String> {
        body["items"].as_array().unwrap().iter().map(|i| i["sessionId"].as_str().unwrap().to_owned()).collect()
    };

    let all = index("").await;
    assert_eq!(sessions_of(&all), ["s4", "s3", "s2", "s1", "s0"], "newest last message first");
    assert_eq!(all["total"], 5);
    assert!(all["_links"]["self"]["href"].is_string(), "{all}");
    let s3 = &all["items"][1];
    assert_eq!(s3["messages"], 2);
    assert_eq!(s3["startTime"], "2024-05-04T10:00:00.000Z");
    assert_eq!(s3["endTime"], "2024-05-04T10:05:00.000Z");
    assert_eq!(s3["ratings"], json!([2]));
    assert_eq!(s3["channel"], "webchat", "from the session's first message");
    assert_eq!(s3["contactId"], "odd");
    assert!(s3["_id"].as_str().is_some_and(|id| id.len() == 24));

    assert_eq!(sessions_of(&index("&contactIds=odd").await), ["s3", "s1"]);
    assert_eq!(sessions_of(&index("&contactIds[]=odd&contactIds[]=even").await).len(), 5);
    assert_eq!(sessions_of(&index("&contactIds=odd,even").await), Vec::<String>::new(), "never split at commas");
    assert_eq!(sessions_of(&index("&search=refund").await), ["s3"]);
    assert_eq!(sessions_of(&index("&search=Refund%20ORDER").await), ["s3"], "every word, any case");
    assert_eq!(sessions_of(&index("&search=refund%20parcel").await), Vec::<String>::new(), "in one message");
    assert_eq!(sessions_of(&index("&search=parcel").await).len(), 5);
    assert_eq!(sessions_of(&index("&from=2024-05-03T00:00:00Z&to=2024-05-04T10:00:00Z").await), ["s2"]);

    // Cursors walk the index both ways without gaps or repeats.
    let first = index("&limit=2").await;
    assert_eq!(sessions_of(&first), ["s4", "s3"]);
    let next = first["nextCursor"].as_str().unwrap();
    let second = index(&format!("&limit=2&next={next}")).await;
    assert_eq!(sessions_of(&second), ["s2", "s1"]);
    let back = second["previousCursor"].as_str().unwrap();
    assert_eq!(sessions_of(&index(&format!("&limit=2&previous={back}")).await), ["s4", "s3"]);
    let last = index(&format!("&limit=2&next={}", second["nextCursor"].as_str().unwrap())).await;
    assert_eq!((sessions_of(&last), last["nextCursor"].clone()), (vec!["s0".to_owned()], Json::Null));

    for (query, field) in [
        ("&limit=0", "limit"),
        ("&search=%3F%21", "search"),
        ("&next=nonsense", "next"),
        ("&from=yesterday", "from"),
        ("&skip=1&next=x", "skip"),
    ] {
        let path = format!("/new/v2.0/conversations?projectId={project}{query}");
        let response = app.request(Method::GET, &path).send().await.unwrap();
        assert_invalid(response, 1005, "/new/v2.0/conversations", field).await;
    }
    let response = app.request(Method::GET, "/new/v2.0/conversations").send().await.unwrap();
    assert_eq!(assert_problem(response, 400, 1000, "/new/v2.0/conversations").await["details"]["field"], "projectId");
}

async fn a_transcript_reads_in_order_and_expert_mode_adds_the_records(engine: Engine) {
    let app = spawn_app_on(engine).await;
    let project = app.create_project().await;
    let mut input = message(&project, "s1", "in", "2024-05-01T12:00:00.000Z", "book a table");
    input["inputId"] = json!("i1");
    let answer = json!({"projectId": project, "contactId": "c1", "sessionId": "s1", "messageId": "out", "type": "output",
                        "source": "bot", "inputId": "i1", "inputText": "For how many?", "timestamp": "2024-05-01T12:00:01.000Z"});
    send(&app, &json!([answer, input])).await;
    let mut rec = record(&project, "c1", "s1", "i1");
    rec["intent"] = json!("booking");
    rec["intentScore"] = json!(0.9);
    rec["slots"] = json!({"people": 2});
    app.ingest_new(&[rec]).await;

    let plain = get_json(&app, &format!("/new/v2.0/conversations/s1?projectId={project}")).await;
    assert_eq!(plain["total"], 2);
    let ids: Vec<&str> = plain["items"].as_array().unwrap().iter().map(|m| m["messageId"].as_str().unwrap()).collect();
    assert_eq!(ids, ["in", "out"], "in time order");
    assert!(plain["items"][0].get("intent").is_none(), "plain mode adds nothing");
    assert_eq!(plain["items"][0]["projectName"], "Test bot");

    let expert = get_json(&app, &format!("/new/v2.0/conversations/s1?projectId={project}&expertMode=true")).await;
    assert_eq!(expert["items"][0]["intent"], "booking");
    assert_eq!(expert["items"][0]["intentScore"], 0.9);
    assert_eq!(expert["items"][0]["slots"], json!({"people": 2}));
    assert!(expert["items"][1].get("intent").is_none(), "outputs carry no record fields");

    let unknown = get_json(&app, &format!("/new/v2.0/conversations/nobody?projectId={project}")).await;
    assert_eq!((unknown["items"].clone(), unknown["total"].clone()), (json!([]), json!(0)));
    let path = format!("/new/v2.0/conversations/s1?projectId={project}&expertMode=yes");
    let response = app.request(Method::GET, &path).send().await.unwrap();
    assert_invalid(response, 1005, "/new/v2.0/conversations/s1", "expertMode").await;
    let response = app.request(Method::GET, "/new/v2.0/conversations/s1?projectId=xyz").send().await.unwrap();
    assert_invalid(response, 1005, "/new/v2.0/conversations/s1", "projectId").await;

    // As CSV, one row per message with the catalogue's columns.
    let response = app.get_accepting(&format!("/new/v2.0/conversations/s1?projectId={project}"), "text/csv").await;
    let text = response.text().await.unwrap();
    assert!(text.starts_with("id,messageId,organisation,projectId,projectName,sessionId"), "{text}");
    assert_eq!(text.lines().count(), 3);
}

async fn deleting_a_transcript_empties_it_at_once_and_keeps_the_session(engine: Engine) {
    let app = spawn_app_on(engine).await;
    let project = app.create_project().await;
    send(&app, &json!([message(&project, "s1", "m1", "2024-05-01T12:00:00.000Z", "secret plans")])).await;
    let path = format!("/new/v2.0/conversations/s1?projectId={project}");
    let response = app.request(Method::DELETE, &path).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<Json>().await.unwrap(), json!({}));
    let transcript = get_json(&app, &path).await;
    assert_eq!((transcript["items"].clone(), transcript["total"].clone()), (json!([]), json!(0)));
    let index = get_json(&app, &format!("/new/v2.0/conversations?projectId={project}")).await;
    assert_eq!(index["total"], 0, "the session leaves the index");
    assert_eq!(get_json(&app, "/v2.4/Conversations/$count").await, 0);
    let kept = sessions(&app, "sessionId eq 's1'").await;
    assert_eq!(kept.len(), 1, "the session stays");
    assert_eq!(kept[0]["messagesCount"], 0);
    // Deleting again, or a session never seen, answers the same.
    let response = app.request(Method::DELETE, &path).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let response = app.request(Method::DELETE, "/new/v2.0/conversations/s1").send().await.unwrap();
    assert_problem(response, 400, 1000, "/new/v2.0/conversations/s1").await;
}

async fn erasing_a_contact_takes_their_messages_and_sessions(engine: Engine) {
    let on_sqlite = matches!(engine, Engine::Sqlite);
    let mut app = spawn_app_on(engine).await;
    let project = app.create_project().await;
    let mut doomed = message(&project, "s-doomed", "m1", "2024-05-01T12:00:00.000Z", "ERASE-ME-7d1c text");
    doomed["contactId"] = json!("subject-9a2b");
    doomed["inputData"] = json!({"card": "DATA-ME-51f0"});
    let kept = message(&project, "s-kept", "m2", "2024-05-01T12:00:00.000Z", "keep this");
    send(&app, &json!([doomed, kept])).await;
    let status = erase_and_wait(&app, &project, json!({"contactIds": ["subject-9a2b"]})).await;
    assert_eq!((status["status"].clone(), status["deleted"].clone()), (json!("done"), json!(1)));
    let left: Vec<Json> = sessions(&app, "inputsCount ge 0").await;
    assert_eq!(left.iter().map(|s| s["sessionId"].clone()).collect::<Vec<_>>(), [json!("s-kept")]);
    let index = get_json(&app, &format!("/new/v2.0/conversations?projectId={project}&search=erase")).await;
    assert_eq!(index["total"], 0, "not even the search index finds it");
    if on_sqlite {
        app.stop().await;
        let disk = app.on_disk();
        for secret in ["ERASE-ME-7d1c", "DATA-ME-51f0", "subject-9a2b"] {
            assert!(!disk.windows(secret.len()).any(|w| w == secret.as_bytes()), "{secret} is still on disk");
        }
    }
}
