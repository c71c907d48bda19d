//! The endpoint as a client sees it: documents, every query option, paging, errors, access.

use std::collections::BTreeMap;

use parley_core::field::FieldType;
use parley_core::goal::{GOAL_FIELDS, GOAL_STEP_FIELDS, GOAL_STEP_METRIC_FIELDS};
use parley_core::goal_event::{GOAL_CYCLE_FIELDS, GOAL_EVENT_FIELDS};
use parley_core::value::format_time;
use parley_core::{
    ESCALATION_FIELDS, EXECUTED_STEP_FIELDS, MESSAGE_FIELDS, RECORD_FIELDS, SESSION_FIELDS, STEP_FIELDS,
};
use quick_xml::events::Event;
use reqwest::Method;
use serde_json::{Value as Json, json};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use super::{enc, numbered_record, odata_error, spawn_unlimited};
use crate::helpers::{Engine, TestApp, spawn_app_with};

const BASE: OffsetDateTime = datetime!(2024-04-28 00:00 UTC);

/// One ingested record, typed, so that expectations are computed from it.
#[derive(Debug, Clone)]
struct Row {
    n: usize,
    intent: Option<&'static str>,
    channel: &'static str,
    timestamp: OffsetDateTime,
    score: Option<f64>,
    understood: bool,
    text: Option<&'static str>,
    rating: Option<f64>,
    escalations: i64,
}

impl Row {
    fn input_id(&self) -> String {
        format!("i{:05}", self.n)
    }
}

fn rows(count: usize) -> Vec<Row> {
    (0..count)
        .map(|n| Row {
            n,
            intent: [Some("greet"), Some("refund"), Some("Refund"), Some("bye"), None][n % 5],
            channel: ["web", "whatsapp", "voice"][n % 3],
            timestamp: BASE + Duration::hours(13 * n as i64),
            score: if n.is_multiple_of(4) { None } else { Some((n % 10) as f64 / 10.0) },
            understood: n.is_multiple_of(2),
            text: [Some("I want a refund"), Some("it's late"), Some("Hello"), None][n % 4],
            rating: if n.is_multiple_of(3) { None } else { Some((n % 5) as f64 - 1.0) },
            escalations: (n % 3) as i64,
        })
        .collect()
}

fn to_json(project: &str, row: &Row) -> Json {
    numbered_record(
        project,
        row.n,
        json!({
            "intent": row.intent,
            "channel": row.channel,
            "timestamp": format_time(row.timestamp),
            "intentScore": row.score,
            "understood": row.understood,
            "inputText": row.text,
            "rating": row.rating,
            "handoverEscalations": row.escalations,
            "inputData": {"n": row.n},
        }),
    )
}

/// A server with one project holding `count` records (and another holding a few), and the rows.
async fn app_with(count: usize) -> (TestApp, String, Vec<Row>) {
    let app = spawn_unlimited(Engine::Sqlite).await;
    let project = app.create_project().await;
    let other = app.create_project().await;
    let all = rows(count);
    let mut records: Vec<Json> = all.iter().map(|r| to_json(&project, r)).collect();
    records.extend(rows(3).iter().map(|r| to_json(&other, &Row { n: 90_000 + r.n, ..r.clone() })));
    // A request carries at most 10 000 records.
    for batch in records.chunks(10_000) {
        app.ingest_new(batch).await;
    }
    (app, project, all)
}

fn input_ids(body: &Json) -> Vec<String> {
    body["value"].as_array().unwrap().iter().map(|v| v["inputId"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn metadata_is_csdl_with_every_property_and_its_edm_type() {
    let mut app = spawn_unlimited(Engine::Sqlite).await;
    let response = app.anonymous(Method::GET, "/v2.4/$metadata").send().await.unwrap();
    assert_eq!(response.status(), 200, "public: no credentials needed");
    assert_eq!(response.headers()["content-type"], "application/xml");
    assert_eq!(response.headers()["odata-version"], "4.0");
    let text = response.text().await.unwrap();

    let mut reader = quick_xml::Reader::from_str(&text);
    // (entity type, property) → (Edm type, nullable)
    let mut properties: BTreeMap<(String, String), (String, String)> = BTreeMap::new();
    let mut keys = Vec::new();
    let mut sets = Vec::new();
    let mut types = Vec::new();
    let mut namespace = String::new();
    loop {
        match reader.read_event() {
            Ok(Event::Start(e) | Event::Empty(e)) => {
                let attr = |name: &str| {
                    e.attributes().filter_map(Result::ok).find(|a| a.key.as_ref() == name).map(|a| a.value.to_string())
                };
                match e.name().as_ref() {
                    "Schema" => namespace = attr("Namespace").unwrap(),
                    "EntityType" => types.push(attr("Name").unwrap()),
                    "PropertyRef" => keys.push(attr("Name").unwrap()),
                    "Property" => {
                        let owner = types.last().unwrap().clone();
                        properties
                            .insert((owner, attr("Name").unwrap()), (attr("Type").unwrap(), attr("Nullable").unwrap()));
                    }
                    "EntitySet" => sets.push((attr("Name").unwrap(), attr("EntityType").unwrap())),
                    _ => {}
                }
            }
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(e) => panic!("$metadata is not XML: {e}\n{text}"),
        }
    }
    assert_eq!(keys, ["id", "id", "id", "id", "id", "id", "goalId", "goalStepId", "goalStepMetricId", "id", "id"]);
    assert_eq!(
        types,
        [
            "AnalyticsRecord",
            "ConversationMessage",
            "Session",
            "Step",
            "ExecutedStep",
            "LiveAgentEscalation",
            "Goal",
            "GoalStep",
            "GoalStepMetric",
            "GoalEvent",
            "GoalCycle"
        ]
    );
    let expected_sets: Vec<(String, String)> = [
        "Analytics",
        "Conversations",
        "Sessions",
        "Steps",
        "ExecutedSteps",
        "LiveAgentEscalations",
        "Goals",
        "GoalSteps",
        "GoalStepMetrics",
        "GoalEvents",
        "GoalCycles",
    ]
    .iter()
    .zip(&types)
    .map(|(set, ty)| ((*set).to_owned(), format!("{namespace}.{ty}")))
    .collect();
    assert_eq!(sets, expected_sets);
    let catalogues = [
        ("AnalyticsRecord", RECORD_FIELDS),
        ("ConversationMessage", MESSAGE_FIELDS),
        ("Session", SESSION_FIELDS),
        ("Step", STEP_FIELDS),
        ("ExecutedStep", EXECUTED_STEP_FIELDS),
        ("LiveAgentEscalation", ESCALATION_FIELDS),
        ("Goal", GOAL_FIELDS),
        ("GoalStep", GOAL_STEP_FIELDS),
        ("GoalStepMetric", GOAL_STEP_METRIC_FIELDS),
        ("GoalEvent", GOAL_EVENT_FIELDS),
        ("GoalCycle", GOAL_CYCLE_FIELDS),
    ];
    assert_eq!(properties.len(), catalogues.iter().map(|(_, fields)| fields.len()).sum::<usize>());
    for (owner, fields) in catalogues {
        for field in fields {
            let expected = match field.ty {
                FieldType::Id | FieldType::Text { .. } | FieldType::LongText { .. } | FieldType::Json { .. } => {
                    "Edm.String"
                }
                FieldType::DateTime => "Edm.DateTimeOffset",
                FieldType::TextList => "Collection(Edm.String)",
                FieldType::Number { .. } => "Edm.Double",
                FieldType::Integer { .. } => "Edm.Int64",
                FieldType::Boolean => "Edm.Boolean",
            };
            let nullable = field.nullable() && field.ty != FieldType::TextList;
            assert_eq!(
                properties.get(&(owner.to_owned(), field.name.to_owned())),
                Some(&(expected.to_owned(), nullable.to_string())),
                "property {owner}.{}",
                field.name
            );
        }
    }

    let older = app.anonymous(Method::GET, "/v2.3/$metadata").send().await.unwrap().text().await.unwrap();
    assert!(older.contains("<PropertyRef Name=\"_id\"/>"), "{older}");
    app.stop().await;
}

#[tokio::test]
async fn the_service_document_lists_the_entity_sets() {
    let mut app = spawn_unlimited(Engine::Sqlite).await;
    for path in ["/v2.4", "/v2.4/", "/v2.3/"] {
        let response = app.anonymous(Method::GET, path).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(response.headers()["content-type"], "application/json;odata.metadata=minimal");
        let body: Json = response.json().await.unwrap();
        assert_eq!(
            body["value"],
            json!([
                {"name": "Analytics", "kind": "EntitySet", "url": "Analytics"},
                {"name": "Conversations", "kind": "EntitySet", "url": "Conversations"},
                {"name": "Sessions", "kind": "EntitySet", "url": "Sessions"},
                {"name": "Steps", "kind": "EntitySet", "url": "Steps"},
                {"name": "ExecutedSteps", "kind": "EntitySet", "url": "ExecutedSteps"},
                {"name": "LiveAgentEscalations", "kind": "EntitySet", "url": "LiveAgentEscalations"},
                {"name": "Goals", "kind": "EntitySet", "url": "Goals"},
                {"name": "GoalSteps", "kind": "EntitySet", "url": "GoalSteps"},
                {"name": "GoalStepMetrics", "kind": "EntitySet", "url": "GoalStepMetrics"},
                {"name": "GoalEvents", "kind": "EntitySet", "url": "GoalEvents"},
                {"name": "GoalCycles", "kind": "EntitySet", "url": "GoalCycles"},
            ]),
            "{path}"
        );
        assert!(body["@odata.context"].as_str().unwrap().ends_with("/$metadata"));
    }
    app.stop().await;
}

#[tokio::test]
async fn filters_of_every_kind() {
    let (mut app, project, all) = app_with(30).await;
    type Check = fn(&Row) -> bool;
    let cases: &[(&str, Check)] = &[
        ("intent eq 'refund'", |r| r.intent == Some("refund")),
        ("intent ne 'refund'", |r| r.intent != Some("refund")),
        ("intent eq null", |r| r.intent.is_none()),
        ("intentScore gt 0.5", |r| r.score.is_some_and(|s| s > 0.5)),
        ("intentScore le 0.3 or intentScore eq null", |r| r.score.is_none_or(|s| s <= 0.3)),
        ("handoverEscalations ge 2", |r| r.escalations >= 2),
        ("understood eq true and channel eq 'web'", |r| r.understood && r.channel == "web"),
        ("understood", |r| r.understood),
        ("not (channel eq 'voice')", |r| r.channel != "voice"),
        ("(intent eq 'greet' or intent eq 'bye') and understood eq false", |r| {
            matches!(r.intent, Some("greet" | "bye")) && !r.understood
        }),
        ("intent in ('greet', 'Refund')", |r| matches!(r.intent, Some("greet" | "Refund"))),
        ("contains(inputText, 'refund')", |r| r.text.is_some_and(|t| t.contains("refund"))),
        ("startswith(inputText, 'it''s')", |r| r.text.is_some_and(|t| t.starts_with("it's"))),
        ("endswith(inputText, 'late')", |r| r.text.is_some_and(|t| t.ends_with("late"))),
        ("inputText eq 'it''s late'", |r| r.text == Some("it's late")),
        ("tolower(intent) eq 'refund'", |r| r.intent.is_some_and(|i| i.to_lowercase() == "refund")),
        ("toupper(channel) eq 'WEB'", |r| r.channel == "web"),
        ("year(timestamp) eq 2024 and month(timestamp) eq 5", |r| {
            r.timestamp.year() == 2024 && u8::from(r.timestamp.month()) == 5
        }),
        ("day(timestamp) eq 1", |r| r.timestamp.day() == 1),
        ("hour(timestamp) eq 13", |r| r.timestamp.hour() == 13),
        ("timestamp ge 2024-05-03T00:00:00Z", |r| r.timestamp >= datetime!(2024-05-03 00:00 UTC)),
        ("timestamp lt '2024-05-03T00:00:00.000Z'", |r| r.timestamp < datetime!(2024-05-03 00:00 UTC)),
        ("timestamp ge 2024-05-03T02:00:00+02:00", |r| r.timestamp >= datetime!(2024-05-03 00:00 UTC)),
        ("timestamp lt '2024-05-02T20:00:00-04:00'", |r| r.timestamp < datetime!(2024-05-03 00:00 UTC)),
        ("rating eq -1", |r| r.rating == Some(-1.0)),
        ("rating gt 1.5", |r| r.rating.is_some_and(|x| x > 1.5)),
        ("contains(inputData, '\"n\":1')", |r| r.n.to_string().starts_with('1')),
    ];
    for (filter, check) in cases {
        let scoped = format!("projectId eq '{project}' and ({filter})");
        let body =
            app.odata_json(&format!("/v2.4/Analytics?$select=inputId&$orderby=inputId&$filter={}", enc(&scoped))).await;
        let expected: Vec<String> = all.iter().filter(|r| check(r)).map(Row::input_id).collect();
        assert!(!expected.is_empty() && expected.len() < all.len(), "{filter} tells nothing apart");
        assert_eq!(input_ids(&body), expected, "$filter={filter}");
    }
    // A '+' that was not percent-encoded arrives as a space; the bare offset still reads.
    let body =
        app.odata_json("/v2.4/Analytics?$select=inputId&$filter=timestamp%20ge%202024-05-03T02:00:00+02:00").await;
    let later: Vec<String> =
        all.iter().filter(|r| r.timestamp >= datetime!(2024-05-03 00:00 UTC)).map(Row::input_id).collect();
    assert_eq!(input_ids(&body), later);
    app.stop().await;
}

#[tokio::test]
async fn select_orderby_top_skip_and_format() {
    let (mut app, project, all) = app_with(30).await;
    let body = app.odata_json("/v2.4/Analytics?$select=intent,channel&$top=3").await;
    assert!(body["@odata.context"].as_str().unwrap().ends_with("/v2.4/$metadata#Analytics(intent,channel)"));
    for item in body["value"].as_array().unwrap() {
        let keys: Vec<&String> = item.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["intent", "channel"]);
    }

    let order = enc("channel desc,intentScore asc,inputId");
    let mine = enc(&format!("projectId eq '{project}'"));
    let body = app.odata_json(&format!("/v2.4/Analytics?$select=inputId&$orderby={order}&$filter={mine}")).await;
    let mut expected = all.clone();
    // Nulls sort lowest.
    expected.sort_by(|a, b| b.channel.cmp(a.channel).then(a.score.partial_cmp(&b.score).unwrap()).then(a.n.cmp(&b.n)));
    assert_eq!(input_ids(&body), expected.iter().map(Row::input_id).collect::<Vec<_>>());

    let body = app
        .odata_json(&format!("/v2.4/Analytics?$select=inputId&$orderby=timestamp&$top=5&$skip=10&$filter={mine}"))
        .await;
    assert_eq!(input_ids(&body), (10..15).map(|n| format!("i{n:05}")).collect::<Vec<_>>());
    assert!(body.get("@odata.nextLink").is_none(), "$top ends the answer");

    let full =
        app.odata_json(&format!("/v2.4/Analytics?$filter={}&$top=1", enc(&format!("projectId eq '{project}'")))).await;
    let item = &full["value"][0];
    assert_eq!(item.as_object().unwrap().len(), RECORD_FIELDS.len(), "every property without $select");
    assert_eq!(item["inputData"], json!("{\"n\":0}"), "JSON values are JSON strings");
    assert_eq!(item["timestamp"], json!("2024-04-28T00:00:00.000Z"), "dates are UTC ISO 8601");
    assert_eq!(item["trackedGoals"], json!([]), "collections are never null");

    let response = app
        .odata_get(&format!(
            "/v2.4/Analytics?$format=csv&$select=inputId,intent,timestamp&$orderby=inputId&$top=2&$filter={mine}"
        ))
        .await;
    assert_eq!(response.headers()["content-type"], "text/csv; charset=utf-8");
    assert_eq!(
        response.text().await.unwrap(),
        "inputId,intent,timestamp\r\ni00000,greet,2024-04-28T00:00:00.000Z\r\ni00001,refund,2024-04-28T13:00:00.000Z\r\n"
    );
    app.stop().await;
}

#[tokio::test]
async fn count_in_both_forms() {
    let (mut app, _, all) = app_with(30).await;
    // The admin reads both projects; the other one has one web record.
    let web = all.iter().filter(|r| r.channel == "web").count() + 1;
    let body = app.odata_json(&format!("/v2.4/Analytics?$count=true&$top=2&$filter={}", enc("channel eq 'web'"))).await;
    assert_eq!(body["@odata.count"], web);
    assert_eq!(body["value"].as_array().unwrap().len(), 2);
    let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["@odata.context", "@odata.count", "value"]);

    let response = app.odata_get(&format!("/v2.4/Analytics/$count?$filter={}", enc("channel eq 'web'"))).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/plain;charset=utf-8");
    assert_eq!(response.text().await.unwrap(), web.to_string());
    let response = app.odata_get("/v2.4/Analytics/$count").await;
    assert_eq!(response.text().await.unwrap(), (all.len() + 3).to_string(), "every project the admin may read");
    app.stop().await;
}

/// Follows `@odata.nextLink` from `first`, with `prefer` on every request; returns the input
/// ids of every page and the pages' sizes.
async fn follow(app: &TestApp, first: &str, prefer: Option<&str>) -> (Vec<String>, Vec<usize>) {
    let mut url = app.url(first);
    let mut ids = Vec::new();
    let mut sizes = Vec::new();
    loop {
        let mut request = app.client.get(&url).header("apikey", &app.api_key);
        if let Some(prefer) = prefer {
            request = request.header("prefer", prefer);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200, "{url}");
        if let Some(prefer) = prefer {
            let applied = response.headers()["preference-applied"].to_str().unwrap().to_owned();
            assert_eq!(applied, prefer.replace(' ', ""));
        }
        let body: Json = response.json().await.unwrap();
        let page = input_ids(&body);
        sizes.push(page.len());
        ids.extend(page);
        assert!(sizes.len() < 100, "paging does not end");
        match body.get("@odata.nextLink").and_then(Json::as_str) {
            Some(next) => {
                assert!(next.starts_with(&app.url("/")), "an absolute link: {next}");
                assert!(!next.contains("$skip="), "the skip is applied once: {next}");
                url = next.to_owned();
            }
            None => return (ids, sizes),
        }
    }
}

#[tokio::test]
async fn server_driven_paging_follows_next_links_by_keyset() {
    let (mut app, project, all) = app_with(10_050).await;
    let mine = format!("$filter={}", enc(&format!("projectId eq '{project}'")));
    let by_id: Vec<String> = all.iter().map(Row::input_id).collect();

    let (mut ids, sizes) = follow(&app, &format!("/v2.4/Analytics?$select=inputId&{mine}"), None).await;
    assert_eq!(sizes, [10_000, 50], "at most 10 000 rows an answer by default");
    ids.sort();
    assert_eq!(ids, by_id, "every record once");

    let mut newest_first = all.clone();
    newest_first.sort_by_key(|r| std::cmp::Reverse(r.timestamp));
    let newest_first: Vec<String> = newest_first.iter().map(Row::input_id).collect();
    let options = format!("$select=inputId,timestamp&$orderby={}&{mine}", enc("timestamp desc"));
    let (ids, sizes) = follow(&app, &format!("/v2.4/Analytics?{options}"), Some("odata.maxpagesize=1000")).await;
    assert_eq!(sizes.len(), 11);
    assert!(sizes.iter().all(|s| *s <= 1000));
    assert_eq!(ids, newest_first);

    let (ids, sizes) =
        follow(&app, &format!("/v2.4/Analytics?{options}&$top=2500"), Some("odata.maxpagesize=1000")).await;
    assert_eq!(sizes, [1000, 1000, 500], "$top carries over into the links");
    assert_eq!(ids, newest_first[..2500]);

    let (ids, _) = follow(&app, &format!("/v2.4/Analytics?{options}&$skip=100"), Some("odata.maxpagesize=3000")).await;
    assert_eq!(ids, newest_first[100..]);

    let scripted = format!(
        "$select=inputId&$orderby={}&$top=4000&$filter={}",
        enc("timestamp asc"),
        enc("timestamp gt 2024-06-01T00:00:00Z")
    );
    let (ids, sizes) = follow(&app, &format!("/v2.4/Analytics?{scripted}"), None).await;
    let expected: Vec<String> =
        all.iter().filter(|r| r.timestamp > datetime!(2024-06-01 00:00 UTC)).take(4000).map(Row::input_id).collect();
    assert_eq!(sizes, [4000]);
    assert_eq!(ids, expected);
    app.stop().await;
}

#[tokio::test]
async fn apply_groups_by_intent_with_count_and_sum() {
    let (mut app, project, all) = app_with(30).await;
    let apply = "groupby((intent),aggregate($count as n,handoverEscalations with sum as escalations))";
    let body = app.odata_json(&format!("/v2.4/Analytics?$apply={}&$filter={}", enc(apply), enc("n gt 0"))).await;
    assert!(body["@odata.context"].as_str().unwrap().ends_with("#Analytics(intent,n,escalations)"));
    let mut expected: BTreeMap<Option<&str>, (usize, i64)> = BTreeMap::new();
    for row in &all {
        let entry = expected.entry(row.intent).or_default();
        entry.0 += 1;
        entry.1 += row.escalations;
    }
    // The other project's three records count too: the admin may read both.
    for row in rows(3) {
        let entry = expected.entry(row.intent).or_default();
        entry.0 += 1;
        entry.1 += row.escalations;
    }
    let expected: Vec<Json> =
        expected.iter().map(|(intent, (n, sum))| json!({"intent": intent, "n": n, "escalations": sum})).collect();
    assert_eq!(body["value"], json!(expected));

    let only_mine = format!("filter(projectId eq '{project}')/groupby((intent),aggregate($count as n))");
    let body = app
        .odata_json(&format!("/v2.4/Analytics?$apply={}&$orderby={}&$count=true", enc(&only_mine), enc("n desc")))
        .await;
    let counts: Vec<u64> = body["value"].as_array().unwrap().iter().map(|g| g["n"].as_u64().unwrap()).collect();
    assert_eq!(counts, [6, 6, 6, 6, 6]);
    assert_eq!(body["@odata.count"], 5);
    app.stop().await;
}

#[tokio::test]
async fn malformed_queries_answer_odata_errors_with_the_position() {
    let (mut app, _, _) = app_with(5).await;
    let cases = [
        ("$filter=nope%20eq%201", "$filter", 0, "'nope' is not a property"),
        ("$filter=intent%20eq%20'x'%20and", "$filter", 17, "expected a value"),
        ("$filter=intent%20eq%20'open", "$filter", 10, "not closed"),
        ("$filter=intent%20eq%201", "$filter", 7, "cannot compare"),
        ("$filter=intent%20eq%20'a%00b'", "$filter", 12, "NUL"),
        ("$orderby=inputData", "$orderby", 0, "cannot order by"),
        ("$select=intent,,channel", "$select", 7, "expected a property"),
        ("$top=-1", "$top", 0, "whole number"),
        ("$apply=groupby((intent),aggregate(rating%20with%20median%20as%20m))", "$apply", 39, "expected sum"),
        ("$skiptoken=abc", "$skiptoken", 0, "skip token"),
        ("$expand=x", "$expand", 0, "not a navigation property"),
        ("$format=atom", "$format", 0, "json or csv"),
    ];
    for (query, target, position, message) in cases {
        let error = odata_error(app.odata_get(&format!("/v2.4/Analytics?{query}")).await, 400).await;
        assert_eq!(error["code"], "1005", "{query}");
        assert_eq!(error["target"], target, "{query}");
        assert_eq!(error["innererror"]["position"], position, "{query}: {error}");
        let text = error["message"].as_str().unwrap();
        assert!(text.contains(message) && text.contains(&format!("position {position}")), "{query}: {text}");
    }
    let error = odata_error(app.odata_get("/v2.4/Analytics/$count?$filter=(").await, 400).await;
    assert_eq!(error["target"], "$filter");

    for method in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
        let response = app
            .anonymous(method.clone(), "/v2.4/Analytics")
            .header("apikey", &app.api_key)
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(response.headers()["allow"], "GET, HEAD", "{method}");
        let error = odata_error(response, 405).await;
        assert_eq!(error["code"], "1013", "{method}");
    }
    let error = odata_error(app.anonymous(Method::DELETE, "/v2.4/$metadata").send().await.unwrap(), 405).await;
    assert_eq!(error["code"], "1013");

    for path in ["/v2.4/analytics", "/v2.4/Nope", "/v2.4/Analytics/nope", "/v2.3/Analytics(x"] {
        let error = odata_error(app.odata_get(path).await, 404).await;
        assert_eq!(error["code"], "1002", "{path}");
    }
    app.stop().await;
}

#[tokio::test]
async fn credentials_come_as_apikey_and_the_others() {
    let (mut app, _, _) = app_with(5).await;
    let key = app.api_key.clone();
    let url = app.url("/v2.4/Analytics?$select=inputId");
    let as_param = app.client.get(format!("{url}&apikey={key}")).send().await.unwrap();
    assert_eq!(as_param.status(), 200);
    let body: Json = as_param.json().await.unwrap();
    assert_eq!(body["value"].as_array().unwrap().len(), 8);
    for (name, value) in
        [("apikey", key.clone()), ("x-api-key", key.clone()), ("authorization", format!("Bearer {key}"))]
    {
        let response = app.client.get(&url).header(name, value).send().await.unwrap();
        assert_eq!(response.status(), 200, "{name}");
    }

    let error = odata_error(app.client.get(&url).send().await.unwrap(), 401).await;
    assert_eq!(error["code"], "401");
    let error = odata_error(app.client.get(format!("{url}&apikey=wrong")).send().await.unwrap(), 401).await;
    assert!(error["message"].as_str().unwrap().contains("apikey query parameter"), "{error}");
    let other = app.user("odata").await.api_key;
    let response = app.client.get(format!("{url}&apikey={other}")).header("x-api-key", &key).send().await.unwrap();
    odata_error(response, 401).await;

    let next = app.odata_json("/v2.4/Analytics?$select=inputId&$top=8").await;
    assert!(next.get("@odata.nextLink").is_none());
    let response =
        app.client.get(format!("{url}&apikey={key}")).header("prefer", "odata.maxpagesize=3").send().await.unwrap();
    let body: Json = response.json().await.unwrap();
    let link = body["@odata.nextLink"].as_str().unwrap();
    assert!(link.contains(&format!("apikey={key}")), "a feed's key stays in its links: {link}");
    let followed = app.client.get(link).header("prefer", "odata.maxpagesize=3").send().await.unwrap();
    assert_eq!(followed.status(), 200, "the link works as it is");
    app.stop().await;
}

#[tokio::test]
async fn only_odata_or_admin_callers_read_and_only_their_projects() {
    let (mut app, project, all) = app_with(12).await;
    let no_role = app.user("apiKeys").await;
    app.add_member(&project, &no_role.id, &["basic"]).await;
    let no_role = no_role.api_key;
    let error = odata_error(app.odata_get_as(&no_role, "/v2.4/Analytics").await, 403).await;
    assert_eq!(error["code"], "403");
    assert!(error["message"].as_str().unwrap().contains("'odata'"));
    odata_error(app.odata_get_as(&no_role, "/v2.4/Analytics/$count").await, 403).await;

    let reader = app.user("odata").await;
    app.add_member(&project, &reader.id, &["basic"]).await;
    let reader = reader.api_key;
    let response = app.odata_get_as(&reader, "/v2.4/Analytics/$count").await;
    assert_eq!(response.text().await.unwrap(), all.len().to_string(), "only the project they are a member of");
    let response = app.odata_get_as(&reader, "/v2.4/Analytics?$select=projectId").await;
    let body: Json = response.json().await.unwrap();
    assert!(body["value"].as_array().unwrap().iter().all(|v| v["projectId"] == project.as_str()));

    let outsider = app.user("odata").await.api_key;
    let body: Json = app.odata_get_as(&outsider, "/v2.4/Analytics?$count=true").await.json().await.unwrap();
    assert_eq!((body["@odata.count"].as_u64(), body["value"].as_array().map(Vec::len)), (Some(0), Some(0)));
    app.stop().await;
}

#[tokio::test]
async fn the_older_feed_calls_the_key_underscore_id_and_entities_are_addressable() {
    let (mut app, _, _) = app_with(3).await;
    let body = app.odata_json("/v2.4/Analytics?$select=id,inputId&$orderby=inputId&$top=1").await;
    let id = body["value"][0]["id"].as_str().unwrap().to_owned();

    let older = app
        .odata_json(&format!("/v2.3/Analytics?$select=_id,inputId&$filter={}", enc(&format!("_id eq '{id}'"))))
        .await;
    assert_eq!(older["value"], json!([{"_id": id, "inputId": "i00000"}]));
    assert!(older["@odata.context"].as_str().unwrap().contains("/v2.3/$metadata#Analytics(_id,inputId)"));
    odata_error(app.odata_get("/v2.3/Analytics?$select=id").await, 400).await;

    let entity = app.odata_json(&format!("/v2.4/Analytics('{id}')?$select=inputId")).await;
    assert!(entity["@odata.context"].as_str().unwrap().ends_with("/v2.4/$metadata#Analytics/$entity"));
    assert_eq!(entity["inputId"], "i00000");
    let error = odata_error(app.odata_get("/v2.4/Analytics('000000000000000000000000')").await, 404).await;
    assert_eq!(error["code"], "1002");
    odata_error(app.odata_get(&format!("/v2.4/Analytics('{id}')?$top=1")).await, 400).await;
    app.stop().await;
}

#[tokio::test]
async fn masked_values_arrive_masked() {
    let mut app = spawn_unlimited(Engine::Sqlite).await;
    let project = app.create_project().await;
    let response = app
        .request(Method::PATCH, &format!("/new/v2.0/projects/{project}"))
        .json(&json!({"settings": {"maskSensitive": true}}))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.text().await.unwrap());
    app.ingest_new(&[numbered_record(
        &project,
        1,
        json!({"inputText": "card 4111", "inputData": {"card": "4111"}, "ip": "192.0.2.1"}),
    )])
    .await;
    let body = app.odata_json("/v2.4/Analytics?$select=inputText,inputData,ip").await;
    assert_eq!(body["value"], json!([{"inputText": "*****", "inputData": "\"*****\"", "ip": "*****"}]));
    app.stop().await;
}

/// A refusal by a layer in front of the OData routes (here the rate limit) is an OData error too.
#[tokio::test]
async fn a_rate_limited_odata_request_gets_an_odata_error() {
    let mut app = spawn_app_with(Engine::Sqlite, |config| config.rate_limit_per_minute = 2).await;
    for _ in 0..2 {
        assert_eq!(app.odata_get("/v2.4/Analytics?$top=1").await.status(), 200);
    }
    let response = app.odata_get("/v2.4/Analytics?$top=1").await;
    assert!(response.headers().contains_key("retry-after"));
    let error = odata_error(response, 429).await;
    assert_eq!(error["code"], "429");
    app.stop().await;
}
