//! Content negotiation (docs/contract/rest.md §7): HAL by default, JSON, XML, CSV, 406, and problem bodies in
//! XML.

use serde_json::{Value as Json, json};

use crate::helpers::{
    RECORD_FIELD_NAMES, TestApp, assert_csv_cell, assert_problem, assert_problem_body, assert_trace_id,
    assert_xml_matches, content_type, full_record, header, parse_csv, parse_xml, record, spawn_app,
};

const PATH: &str = "/new/v2.0/analytics";

/// Text that XML must escape, with a character XML 1.0 cannot hold at all.
const AWKWARD: &str = "a < b && c > d \u{1} \"e\" 'f'";

/// A project with three records, the second carrying awkward text; returns the project and the
/// records as sent.
async fn fixture(app: &TestApp) -> (String, Vec<Json>) {
    let project = app.create_project().await;
    let mut sent: Vec<Json> = (1..=3).map(|i| full_record(&project, &format!("input-{i}"))).collect();
    for (i, r) in sent.iter_mut().enumerate() {
        r["timestamp"] = json!(format!("2024-05-01T12:00:0{i}.000Z"));
    }
    sent[1]["inputText"] = json!(AWKWARD);
    sent[1]["custom1"] = json!("]]> & <![CDATA[ x");
    sent[1]["ratingComment"] = json!("line one\r\nline two, \"quoted\"");
    sent[2]["trackedGoals"] = json!([]);
    sent[2]["slots"] = json!("just text");
    app.ingest_new(&sent).await;
    (project, sent)
}

fn list_path(project: &str, extra: &str) -> String {
    format!("{PATH}?projectId={project}{extra}")
}

#[tokio::test]
async fn hal_is_the_default() {
    let app = spawn_app().await;
    let (project, _) = fixture(&app).await;
    let target = list_path(&project, "&limit=2");

    let raw = app.raw("GET", &target, &[("X-API-Key", &app.api_key)], b"").await;
    assert_eq!(raw.status, 200);
    assert_eq!(raw.header("content-type"), Some("application/hal+json"));
    let without_accept = raw.json();

    let response = app.get_accepting(&target, "*/*").await;
    assert_eq!(content_type(&response), "application/hal+json");
    let body: Json = response.json().await.expect("JSON");

    for body in [&without_accept, &body] {
        assert!(body.get("items").is_none(), "{body}");
        let items = body["_embedded"]["items"].as_array().expect("_embedded.items");
        assert_eq!(items.len(), 2);
        for item in items {
            let id = item["id"].as_str().expect("an id");
            assert_eq!(item["_links"]["self"]["href"], format!("{PATH}/{id}"));
        }
        assert_eq!(body["total"], 3);
        assert_eq!(body["_links"]["self"]["href"], target);
        assert!(body["_links"].get("previous").is_none());
        let next = body["_links"]["next"]["href"].as_str().expect("a next link");
        assert!(next.starts_with(PATH) && next.contains(&format!("projectId={project}")), "{next}");
        assert!(next.contains(&format!("next={}", body["nextCursor"].as_str().expect("a cursor"))), "{next}");
    }
    assert_eq!(without_accept["_embedded"], body["_embedded"]);

    let next = body["_links"]["next"]["href"].as_str().expect("a next link");
    let second: Json = app.get_accepting(next, "application/hal+json").await.json().await.expect("JSON");
    assert_eq!(second["_embedded"]["items"].as_array().expect("items").len(), 1);
    assert_eq!(second["_embedded"]["items"][0]["inputId"], "input-3");
    assert!(second["_links"]["previous"]["href"].is_string());
    assert!(second["_links"].get("next").is_none());
}

#[tokio::test]
async fn hal_links_never_carry_the_api_key() {
    let app = spawn_app().await;
    let (project, _) = fixture(&app).await;
    let target = format!("{}&api_key={}", list_path(&project, "&limit=1"), app.api_key);
    let response = app.anonymous(reqwest::Method::GET, &target).send().await.expect("the request is answered");
    assert_eq!(response.status(), 200);
    let body: Json = response.json().await.expect("JSON");
    let links = body["_links"].to_string();
    assert!(body["_links"]["next"].is_object(), "{body}");
    assert!(!links.contains(&app.api_key), "a link carries the API key: {links}");
}

#[tokio::test]
async fn a_single_record_in_hal_links_itself() {
    let app = spawn_app().await;
    let (project, sent) = fixture(&app).await;
    let id = app.record_by_input(&project, "input-1").await["id"].as_str().expect("an id").to_owned();
    let path = format!("{PATH}/{id}");
    let response = app.get(&path).send().await.expect("the request is answered");
    assert_eq!(content_type(&response), "application/hal+json");
    let body: Json = response.json().await.expect("JSON");
    assert_eq!(body["_links"]["self"]["href"], path);
    assert_eq!(body["inputId"], sent[0]["inputId"]);
    assert_eq!(body["custom1"], sent[0]["custom1"]);
}

#[tokio::test]
async fn json_when_asked() {
    let app = spawn_app().await;
    let (project, sent) = fixture(&app).await;
    let response = app.get_accepting(&list_path(&project, ""), "application/json").await;
    assert_eq!(response.status(), 200);
    assert_eq!(content_type(&response), "application/json");
    let body: Json = response.json().await.expect("JSON");
    assert!(body.get("_embedded").is_none() && body.get("_links").is_none(), "{body}");
    let items = body["items"].as_array().expect("items");
    assert_eq!(items.len(), 3);
    for (item, original) in items.iter().zip(&sent) {
        crate::helpers::assert_holds_sent_fields(item, original);
        assert!(item.get("_links").is_none());
    }
}

/// Compares one `item` (or the root of a single record) with the record as JSON and as sent.
fn assert_xml_record(element: &crate::helpers::XmlElement, stored: &Json, sent: &Json) {
    let names: Vec<&str> = element.children.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, RECORD_FIELD_NAMES);
    for name in RECORD_FIELD_NAMES {
        if sent["inputText"] == AWKWARD && name == "inputText" {
            continue;
        }
        assert_xml_matches(element.child(name), &stored[name]);
        if let Some(value) = sent.get(name).filter(|_| !matches!(name, "id" | "organisation")) {
            assert_xml_matches(element.child(name), value);
        }
    }
    if sent["inputText"] == AWKWARD {
        let text = &element.child("inputText").text;
        assert!(text.starts_with("a < b && c > d ") && text.ends_with(" \"e\" 'f'"), "{text:?}");
    }
}

#[tokio::test]
async fn xml_lists_every_field_of_every_record() {
    let app = spawn_app().await;
    let (project, sent) = fixture(&app).await;
    let stored = app.list(&project, &[]).await;
    for accept in ["application/xml", "text/xml"] {
        let response = app.get_accepting(&list_path(&project, ""), accept).await;
        assert_eq!(response.status(), 200);
        let media = content_type(&response);
        let document = parse_xml(&response.text().await.expect("text"));
        assert_eq!(document.name, "response");
        let names: Vec<&str> = document.children.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["items", "total", "nextCursor", "previousCursor"]);
        assert_eq!(document.child("total").text, "3");
        assert!(document.child("nextCursor").is_nil() && document.child("previousCursor").is_nil());
        let items = document.child("items");
        let records = items.children_named("item");
        assert_eq!(records.len(), 3);
        for ((element, stored), sent) in records.iter().zip(stored["items"].as_array().expect("items")).zip(&sent) {
            assert_xml_record(element, stored, sent);
        }
        assert_eq!(media.split(';').next(), Some(accept), "the answer is in the media type asked for");
    }
}

#[tokio::test]
async fn a_single_record_in_xml() {
    let app = spawn_app().await;
    let (project, sent) = fixture(&app).await;
    let stored = app.record_by_input(&project, "input-2").await;
    let response =
        app.get_accepting(&format!("{PATH}/{}", stored["id"].as_str().expect("an id")), "application/xml").await;
    assert_eq!(response.status(), 200);
    assert!(content_type(&response).starts_with("application/xml"));
    let document = parse_xml(&response.text().await.expect("text"));
    assert_eq!(document.name, "response");
    assert_xml_record(&document, &stored, &sent[1]);
}

#[tokio::test]
async fn csv_lists_one_row_per_record() {
    let app = spawn_app().await;
    let (project, sent) = fixture(&app).await;
    let stored = app.list(&project, &[]).await;
    let response = app.get_accepting(&list_path(&project, ""), "text/csv").await;
    assert_eq!(response.status(), 200);
    assert_eq!(content_type(&response).split(';').next(), Some("text/csv"));
    let (headers, rows) = parse_csv(&response.text().await.expect("text"));
    assert_eq!(headers, RECORD_FIELD_NAMES);
    assert_eq!(rows.len(), 3);
    for ((row, stored), sent) in rows.iter().zip(stored["items"].as_array().expect("items")).zip(&sent) {
        assert_eq!(row.len(), headers.len());
        for (column, cell) in headers.iter().zip(row) {
            assert_csv_cell(cell, &stored[column], column);
            if let Some(value) = sent.get(column) {
                assert_csv_cell(cell, value, column);
            }
        }
    }
    let column = |name: &str| headers.iter().position(|h| h == name).expect("a column");
    assert_eq!(rows[1][column("inputText")], AWKWARD);
    assert_eq!(rows[1][column("ratingComment")], "line one\r\nline two, \"quoted\"");
    assert_eq!(
        serde_json::from_str::<Json>(&rows[0][column("trackedGoals")]).expect("JSON"),
        json!(["booking", "upsell"])
    );
    assert_eq!(serde_json::from_str::<Json>(&rows[2][column("trackedGoals")]).expect("JSON"), json!([]));
    assert_eq!(
        serde_json::from_str::<Json>(&rows[0][column("inputData")]).expect("JSON"),
        json!({"payload": {"seat": "12A", "count": 2}})
    );
    assert_eq!(rows[0][column("custom3")], "");
    assert_eq!(rows[0][column("understood")], "true");
}

#[tokio::test]
async fn an_empty_list_in_csv_is_a_header_row() {
    let app = spawn_app().await;
    let project = app.create_project().await;
    let response = app.get_accepting(&list_path(&project, ""), "text/csv").await;
    assert_eq!(response.status(), 200);
    let (headers, rows) = parse_csv(&response.text().await.expect("text"));
    assert_eq!(headers, RECORD_FIELD_NAMES);
    assert!(rows.is_empty());
}

#[tokio::test]
async fn a_single_record_in_csv_is_a_one_row_table() {
    let app = spawn_app().await;
    let (project, sent) = fixture(&app).await;
    let stored = app.record_by_input(&project, "input-1").await;
    let response = app.get_accepting(&format!("{PATH}/{}", stored["id"].as_str().expect("an id")), "text/csv").await;
    assert_eq!(response.status(), 200);
    assert_eq!(content_type(&response).split(';').next(), Some("text/csv"));
    let (headers, rows) = parse_csv(&response.text().await.expect("text"));
    assert_eq!(headers, RECORD_FIELD_NAMES);
    assert_eq!(rows.len(), 1);
    for (column, cell) in headers.iter().zip(&rows[0]) {
        assert_csv_cell(cell, &stored[column], column);
        if let Some(value) = sent[0].get(column) {
            assert_csv_cell(cell, value, column);
        }
    }
}

#[tokio::test]
async fn quality_values_choose_the_format() {
    let app = spawn_app().await;
    let project = app.create_project().await;
    app.ingest_new(&[record(&project, "c", "s", "i1")]).await;
    let path = list_path(&project, "");
    let cases = [
        ("text/csv;q=0.5, application/xml", "application/xml"),
        ("application/json, */*;q=0.1", "application/json"),
        ("text/csv, application/json;q=0.5", "text/csv"),
        ("*/*, application/hal+json;q=0", "application/json"),
        ("application/*", "application/hal+json"),
    ];
    for (accept, expected) in cases {
        let response = app.get_accepting(&path, accept).await;
        assert_eq!(response.status(), 200, "{accept}");
        assert_eq!(content_type(&response).split(';').next(), Some(expected), "{accept}");
    }
}

#[tokio::test]
async fn an_unacceptable_format_is_refused_with_the_offered_ones() {
    let app = spawn_app().await;
    let project = app.create_project().await;
    for accept in ["image/png", "application/json;q=0", "text/html, application/pdf"] {
        let response = app.get_accepting(&list_path(&project, ""), accept).await;
        let body = assert_problem(response, 406, 406, PATH).await;
        let detail = body["detail"].as_str().expect("a detail");
        for offered in ["application/json", "application/hal+json", "application/xml", "text/xml", "text/csv"] {
            assert!(detail.contains(offered), "{detail} lists {offered}");
        }
    }
}

#[tokio::test]
async fn errors_are_xml_when_only_xml_is_acceptable() {
    let app = spawn_app().await;
    let path = format!("{PATH}/5f0c6bc4ad4f8b0011b2e0e1");
    for (accept, key) in [("application/xml", Some(app.api_key.as_str())), ("text/xml", None)] {
        let mut request = app.anonymous(reqwest::Method::GET, &path).header("Accept", accept);
        if let Some(key) = key {
            request = request.header("X-API-Key", key);
        }
        let response = request.send().await.expect("the request is answered");
        let status = if key.is_some() { 404 } else { 401 };
        assert_eq!(response.status().as_u16(), status);
        assert_eq!(content_type(&response).split(';').next(), Some("application/problem+xml"));
        let trace = header(&response, "x-trace-id").expect("a trace id");
        let document = parse_xml(&response.text().await.expect("text"));
        assert_eq!(document.name, "response");
        let field = |name: &str| document.child(name).text.clone();
        let as_json = json!({
            "type": field("type"),
            "title": field("title"),
            "status": field("status").parse::<u16>().expect("a number"),
            "detail": field("detail"),
            "instance": field("instance"),
            "code": field("code").parse::<u64>().expect("a number"),
            "traceId": field("traceId"),
            "details": {},
        });
        assert!(document.child("details").children.is_empty());
        assert_problem_body(&as_json, status, if key.is_some() { 1002 } else { 401 }, &path, &trace);
        assert_trace_id(&trace);
    }

    let response = app.get_accepting(&path, "application/xml, application/json").await;
    assert_problem(response, 404, 1002, &path).await;
}
