//! A real OData client: python-odata 0.8.1, installed from PyPI into a virtual environment under
//! the target directory, reads `$metadata`, and on `Analytics`, `Conversations`, `Sessions`,
//! `ExecutedSteps`, `Steps`, `LiveAgentEscalations`, `Goals`, `GoalSteps`, `GoalStepMetrics`,
//! `GoalEvents` and `GoalCycles` runs a filtered and ordered query paging through more rows than
//! one page holds, and counts.
//! When it cannot be installed the test fails.

use std::path::PathBuf;

use parley_core::goal::{GOAL_FIELDS, GOAL_STEP_FIELDS, GOAL_STEP_METRIC_FIELDS};
use parley_core::goal_event::{GOAL_CYCLE_FIELDS, GOAL_EVENT_FIELDS};
use parley_core::value::format_time;
use parley_core::{
    ESCALATION_FIELDS, EXECUTED_STEP_FIELDS, MESSAGE_FIELDS, RECORD_FIELDS, SESSION_FIELDS, STEP_FIELDS,
};
use serde_json::{Value as Json, json};
use time::format_description::well_known::Rfc3339;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use super::conversation_rows::{Message, Session, conversation_data, send_inputs, send_messages};
use super::{numbered_record, spawn_unlimited};
use crate::helpers::{Engine, python_with, same_json};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/api/odata/client.py");

/// The interpreter of a virtual environment with python-odata 0.8.1.
fn python_with_odata() -> PathBuf {
    let check = "import importlib.metadata as m, odata; assert m.version('python-odata') == '0.8.1'";
    python_with("python-odata==0.8.1", check).join("python")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_odata_reads_metadata_filters_orders_and_pages_every_set() {
    let python = tokio::task::spawn_blocking(python_with_odata).await.unwrap();
    let mut app = spawn_unlimited(Engine::Sqlite).await;
    let project = app.create_project().await;
    let base: OffsetDateTime = datetime!(2024-05-01 08:00 UTC);
    let timestamp = |n: usize| base + Duration::minutes(37 * n as i64);
    let records: Vec<Json> = (0..57)
        .map(|n| {
            numbered_record(
                &project,
                n,
                json!({
                    "timestamp": format_time(timestamp(n)),
                    "channel": if n % 3 == 2 { "voice" } else { "web" },
                    "intent": if n % 4 == 0 { Json::Null } else { json!(format!("intent-{}", n % 5)) },
                    "execution": n % 6,
                    "understood": n % 2 == 0,
                }),
            )
        })
        .collect();
    app.ingest_new(&records).await;
    // Messages and records of sessions of their own, whose records the Analytics query leaves out
    // by their channel.
    let mut conversation = conversation_data(&project, 14, "", Duration::ZERO);
    for message in &mut conversation.messages {
        message.session = format!("chat-{}", message.session);
    }
    for input in &mut conversation.inputs {
        input.session = format!("chat-{}", input.session);
    }
    assert!(conversation.inputs.iter().all(|r| r.channel != Some("web")));
    send_messages(&app, &app.api_key, &conversation.messages).await;
    send_inputs(&app, &app.api_key, &conversation.inputs).await;
    // Steps of sessions of their own: every third an intent, which the query leaves out; each
    // node's parent is the step before it in its session.
    let steps: Vec<Json> = (0..30)
        .map(|n| {
            json!({"projectId": project, "sessionId": format!("flow-{}", n % 3), "executionId": format!("e{n:02}"),
                   "entityReferenceId": format!("node-{}", n % 7), "stepLabel": format!("Node {} at {n}", n % 7),
                   "type": if n % 3 == 2 { "intent" } else { "node" }, "timestamp": format_time(timestamp(n))})
        })
        .collect();
    let response = app.request(reqwest::Method::POST, "/new/v2.0/analytics/steps").json(&steps).send().await.unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::CREATED);
    // Escalations: each opened, every other one assigned, then resolved, the writes sent newest
    // first so that every merge meets an older write late.
    let mut writes: Vec<Json> = Vec::new();
    for n in 0..20usize {
        let write = |status: &str, minutes: i64| {
            json!({"projectId": project, "sessionId": format!("help-{n}"), "escalationId": format!("x{n:02}"),
                   "status": status, "timestamp": format_time(timestamp(n) + Duration::minutes(minutes))})
        };
        writes.push(write("opened", 0));
        if n % 2 == 0 {
            let mut assigned = write("assigned", 1);
            assigned["agentName"] = json!(format!("agent {}", n % 3));
            writes.push(assigned);
            let mut resolved = write("resolved", 9);
            resolved["resolvedAt"] = resolved["timestamp"].clone();
            writes.push(resolved);
        }
    }
    writes.reverse();
    let response =
        app.request(reqwest::Method::POST, "/new/v2.0/analytics/escalations").json(&writes).send().await.unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::CREATED);
    // Goals: three steps each, a metric on each middle step; two cycles of each, the first
    // completed, the second only started.
    let mut events: Vec<Json> = Vec::new();
    for n in 0..9 {
        let goal = json!({"name": format!("goal {n}"), "referenceId": format!("g{n}"), "steps": [
            {"stepId": format!("start-{n}"), "name": format!("start {n}"), "type": "start", "order": 1},
            {"name": format!("middle {n}"), "type": "step", "order": 2,
             "metrics": [{"name": format!("cost {n}"), "type": "currency", "value": 5 * n}]},
            {"stepId": format!("end-{n}"), "name": format!("end {n}"), "type": "completion", "order": 3},
        ]});
        let path = format!("/new/v2.0/projects/{project}/goals");
        let response = app.request(reqwest::Method::POST, &path).json(&goal).send().await.unwrap();
        assert_eq!(response.status(), reqwest::StatusCode::CREATED);
        let created: Json = response.json().await.unwrap();
        let event = |id: String, cycle: String, step: String, at: OffsetDateTime| {
            json!({"projectId": project, "sessionId": format!("goal-{n}"), "goalId": created["_id"], "eventId": id,
                   "goalCycleId": cycle, "stepId": step, "timestamp": format_time(at)})
        };
        events.push(event(format!("ev{n}-0"), format!("cy{n}a"), format!("start-{n}"), timestamp(n)));
        events.push(event(format!("ev{n}-1"), format!("cy{n}a"), format!("end-{n}"), timestamp(n + 1)));
        events.push(event(format!("ev{n}-2"), format!("cy{n}b"), format!("start-{n}"), timestamp(n + 2)));
    }
    let response =
        app.request(reqwest::Method::POST, "/new/v2.0/analytics/goalevents").json(&events).send().await.unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::CREATED);

    let since = timestamp(6);
    let page_size = 4;
    let output = tokio::process::Command::new(&python)
        .arg(SCRIPT)
        .arg(app.url("/v2.4/"))
        .arg(&app.api_key)
        .arg(page_size.to_string())
        .arg(format_time(since))
        .output()
        .await
        .expect("the client runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "client.py failed:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let seen: Json = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"));

    // Python's ISO 8601 for a UTC date-time.
    let as_python = |t: OffsetDateTime| t.format(&Rfc3339).unwrap().replace('Z', "+00:00");
    let mut properties: Vec<&str> = RECORD_FIELDS.iter().map(|f| f.name).collect();
    properties.sort();
    assert_eq!(seen["properties"], json!(properties), "every property read from $metadata");
    assert_eq!(seen["keys"], json!(["id"]));

    let mut expected: Vec<Json> = (0..57usize)
        .filter(|n| n % 3 != 2 && timestamp(*n) >= since)
        .map(|n| {
            json!({
                "inputId": format!("i{n:05}"),
                "timestamp": as_python(timestamp(n)),
                "intent": if n % 4 == 0 { Json::Null } else { json!(format!("intent-{}", n % 5)) },
                "execution": n % 6,
                "understood": n % 2 == 0,
            })
        })
        .collect();
    expected.reverse();
    assert!(expected.len() > 3 * page_size, "more rows than several pages hold");
    assert_eq!(seen["rows"], json!(expected), "filtered by channel and time, newest first, every page");
    assert_eq!(seen["count"], expected.len());

    for (set, fields) in [
        ("conversations", MESSAGE_FIELDS),
        ("sessions", SESSION_FIELDS),
        ("executedSteps", EXECUTED_STEP_FIELDS),
        ("steps", STEP_FIELDS),
        ("escalations", ESCALATION_FIELDS),
        ("goals", GOAL_FIELDS),
        ("goalSteps", GOAL_STEP_FIELDS),
        ("goalStepMetrics", GOAL_STEP_METRIC_FIELDS),
        ("goalEvents", GOAL_EVENT_FIELDS),
        ("goalCycles", GOAL_CYCLE_FIELDS),
    ] {
        let mut properties: Vec<&str> = fields.iter().map(|f| f.name).collect();
        properties.sort();
        assert_eq!(seen[set]["properties"], json!(properties), "every property of {set} read from $metadata");
        let key = match set {
            "goals" => "goalId",
            "goalSteps" => "goalStepId",
            "goalStepMetrics" => "goalStepMetricId",
            _ => "id",
        };
        assert_eq!(seen[set]["keys"], json!([key]), "{set}");
    }

    let mut inputs: Vec<&Message> =
        conversation.messages.iter().filter(|m| m.kind == "input" && m.at >= since).collect();
    inputs.sort_by_key(|m| m.at);
    let expected: Vec<Json> = inputs
        .iter()
        .map(|m| {
            json!({
                "messageId": m.id, "sessionId": m.session, "contactId": m.contact, "source": m.source,
                "inputText": m.text, "inputData": m.data.as_ref().map(Json::to_string), "channel": m.channel,
                "timestamp": as_python(m.at),
            })
        })
        .collect();
    assert!(expected.len() > 2 * page_size, "more messages than two pages hold");
    assert_eq!(seen["conversations"]["rows"], json!(expected), "inputs since then, oldest first, every page");
    assert_eq!(seen["conversations"]["count"], expected.len());

    let mut busy: Vec<Session> = conversation.sessions().into_iter().filter(|s| s.messages >= 2).collect();
    busy.sort_by_key(|s| std::cmp::Reverse(s.started));
    let expected: Vec<Json> = busy
        .iter()
        .map(|s| {
            json!({
                "sessionId": s.id, "userId": s.contact, "startedAt": as_python(s.started),
                "lastActivityAt": as_python(s.last), "channel": s.channel, "rating": s.rating,
                "inputsCount": s.inputs, "messagesCount": s.messages,
            })
        })
        .collect();
    assert!(expected.len() > 2 * page_size, "more sessions than two pages hold");
    // Ratings are compared by value: a whole Edm.Double may come as `3`.
    assert!(
        same_json(&seen["sessions"]["rows"], &json!(expected)),
        "sessions of two messages or more, newest first:\n{}\n{}",
        seen["sessions"]["rows"],
        json!(expected)
    );
    assert_eq!(seen["sessions"]["count"], expected.len());

    let expected: Vec<Json> = (0..30usize)
        .filter(|n| n % 3 != 2)
        .map(|n| {
            json!({
                "executionId": format!("e{n:02}"), "sessionId": format!("flow-{}", n % 3),
                "entityReferenceId": format!("node-{}", n % 7),
                "parentStep": n.checked_sub(3).map(|p| format!("node-{}", p % 7)),
                "timestamp": as_python(timestamp(n)),
            })
        })
        .collect();
    assert!(expected.len() > 2 * page_size, "more steps than two pages hold");
    assert_eq!(seen["executedSteps"]["rows"], json!(expected), "nodes, oldest first, every page");
    assert_eq!(seen["executedSteps"]["count"], expected.len());
    // The catalogue: the label of each node's latest execution.
    let expected: Vec<Json> = (0..7usize)
        .map(|node| {
            let latest = (0..30usize).filter(|n| n % 7 == node).max().unwrap();
            let kind = if latest % 3 == 2 { "intent" } else { "node" };
            json!({"entityReferenceId": format!("node-{node}"), "label": format!("Node {node} at {latest}"), "type": kind})
        })
        .collect();
    assert_eq!(seen["steps"]["rows"], json!(expected));
    assert_eq!(seen["steps"]["count"], 7);
    let expected: Vec<Json> = (0..20usize)
        .filter(|n| n % 2 == 0)
        .map(|n| {
            json!({"escalationId": format!("x{n:02}"), "status": "resolved", "agentName": format!("agent {}", n % 3),
                   "timestamp": as_python(timestamp(n)), "resolvedAt": as_python(timestamp(n) + Duration::minutes(9))})
        })
        .collect();
    assert!(expected.len() > 2 * page_size, "more escalations than two pages hold");
    assert_eq!(seen["escalations"]["rows"], json!(expected), "resolved ones, opened oldest first, every page");
    assert_eq!(seen["escalations"]["count"], expected.len());
    let goals: Vec<Json> =
        (0..9).map(|n| json!({"name": format!("goal {n}"), "referenceId": format!("g{n}")})).collect();
    assert_eq!(seen["goals"]["rows"], json!(goals), "every goal, every page");
    let middles: Vec<Json> =
        (0..9).map(|n| json!({"name": format!("middle {n}"), "order": 2, "type": "step"})).collect();
    assert_eq!(seen["goalSteps"]["rows"], json!(middles));
    let costly: Vec<Json> =
        (0..9).rev().map(|n| json!({"name": format!("cost {n}"), "type": "currency", "value": 5 * n})).collect();
    assert!(same_json(&seen["goalStepMetrics"]["rows"], &json!(costly)), "{}", seen["goalStepMetrics"]["rows"]);
    assert_eq!(seen["goalStepMetrics"]["count"], 9);
    let starts: Vec<Json> = (0..9)
        .flat_map(|n| {
            [(format!("ev{n}-0"), format!("cy{n}a")), (format!("ev{n}-2"), format!("cy{n}b"))]
                .map(|(event, cycle)| json!({"eventId": event, "goalCycleId": cycle, "stepType": "start"}))
        })
        .collect();
    assert_eq!(seen["goalEvents"]["rows"], json!(starts), "start events, every page");
    assert_eq!(seen["goalEvents"]["count"], 18);
    let completed: Vec<Json> = (0..9)
        .map(|n| {
            json!({"goalCycleId": format!("cy{n}a"), "status": "completed", "eventsCount": 2,
                        "completedAt": as_python(timestamp(n + 1))})
        })
        .collect();
    assert_eq!(seen["goalCycles"]["rows"], json!(completed), "completed cycles, every page");
    assert_eq!(seen["goalCycles"]["count"], 9);
    app.stop().await;
}
