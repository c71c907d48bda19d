//! The error format (docs/contract/rest.md §8) for failures the handlers do not produce themselves.

use std::collections::HashSet;

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{assert_problem, header, spawn_app};

#[tokio::test]
async fn an_unknown_route_is_not_found() {
    let app = spawn_app().await;
    for path in ["/new/v2.0/nothing", "/nothing", "/v2.0/analytics/records/extra", "/new/v3.0/analytics"] {
        let body = assert_problem(app.get(path).send().await.expect("an answer"), 404, 1002, path).await;
        assert_eq!(body["details"], json!({}));
    }
    let path = "/new/v2.0/nothing";
    assert_problem(app.anonymous(Method::GET, path).send().await.expect("an answer"), 404, 1002, path).await;
}

#[tokio::test]
async fn a_wrong_method_is_not_allowed() {
    let app = spawn_app().await;
    let cases = [
        (Method::PUT, "/new/v2.0/analytics"),
        (Method::DELETE, "/new/v2.0/analytics/records"),
        (Method::POST, "/v2.0/analytics"),
        (Method::PUT, "/new/v2.0/projects"),
    ];
    for (method, path) in cases {
        let response = app
            .request(method.clone(), path)
            .json(&json!({"projectId": "5f0c6bc4ad4f8b0011b2e0e1"}))
            .send()
            .await
            .expect("an answer");
        assert_problem(response, 405, 1013, path).await;
    }
}

#[tokio::test]
async fn a_body_of_another_media_type_is_unsupported() {
    let app = spawn_app().await;
    let project = app.create_project().await;
    let body = json!({"projectId": project, "contactId": "c", "properties": {"rating": 1}}).to_string();
    let cases = [
        (Method::PATCH, "/new/v2.0/analytics", "text/plain"),
        (Method::PATCH, "/new/v2.0/analytics", "application/x-www-form-urlencoded"),
        (Method::POST, "/new/v2.0/projects", "text/plain"),
        (Method::POST, "/new/v2.0/analytics/records", "text/csv"),
    ];
    for (method, path, media) in cases {
        let response =
            app.request(method, path).header("Content-Type", media).body(body.clone()).send().await.expect("an answer");
        let problem = assert_problem(response, 415, 415, path).await;
        assert!(problem["detail"].as_str().is_some_and(|d| d.contains(media)), "{problem}");
    }
    let response = app
        .request(Method::PATCH, "/new/v2.0/analytics")
        .header("Content-Type", "application/json; charset=utf-8")
        .body(body)
        .send()
        .await
        .expect("an answer");
    assert_eq!(response.status(), 204);
    assert_eq!(header(&response, "x-matched-records").as_deref(), Some("0"));
}

#[tokio::test]
async fn every_failure_has_its_own_trace_id() {
    let app = spawn_app().await;
    let mut seen = HashSet::new();
    for _ in 0..5 {
        let response = app.get("/new/v2.0/nothing").send().await.expect("an answer");
        let trace = header(&response, "x-trace-id").expect("a trace id");
        let body = assert_problem(response, 404, 1002, "/new/v2.0/nothing").await;
        assert_eq!(body["traceId"], trace);
        assert!(seen.insert(trace), "trace ids repeat");
    }
}

#[tokio::test]
async fn the_instance_is_the_path_without_the_query() {
    let app = spawn_app().await;
    let response = app
        .anonymous(Method::GET, "/new/v2.0/analytics?projectId=5f0c6bc4ad4f8b0011b2e0e1&api_key=not-a-real-key-4242")
        .send()
        .await
        .expect("an answer");
    let body = assert_problem(response, 401, 401, "/new/v2.0/analytics").await;
    assert!(!body.to_string().contains("not-a-real-key-4242"), "{body}");
}

#[tokio::test]
async fn headers_over_16_kib_are_refused() {
    let app = spawn_app().await;
    let response = app
        .get("/new/v2.0/projects")
        .header("X-Padding-A", "a".repeat(8 * 1024))
        .header("X-Padding-B", "b".repeat(8 * 1024))
        .send()
        .await
        .expect("an answer");
    assert_problem(response, 431, 431, "/new/v2.0/projects").await;
    let response =
        app.get("/new/v2.0/projects").header("X-Padding-A", "a".repeat(8 * 1024)).send().await.expect("an answer");
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn an_unknown_query_parameter_is_refused_by_name() {
    let app = spawn_app().await;
    let project = app.create_project().await;
    let cases = [
        (format!("/new/v2.0/analytics?projectId={project}&contact=c1"), "contact", Some("contactId")),
        (format!("/v2.0/analytics?projectId={project}&Limit=5"), "Limit", Some("limit")),
        (format!("/new/v2.0/projects/{project}?verbose=1"), "verbose", None),
        (format!("/new/v2.0/conversations?projectId={project}&contactId=c1"), "contactId", Some("contactIds")),
        (format!("/new/v2.0/projects/{project}/goals?weather=fine"), "weather", None),
    ];
    for (path, name, meant) in cases {
        let response = app.get(&path).send().await.expect("an answer");
        let instance = path.split('?').next().unwrap();
        let body = crate::helpers::assert_invalid(response, 1005, instance, name).await;
        let detail = body["detail"].as_str().unwrap();
        assert!(detail.contains("is not a query parameter of this request"), "{detail}");
        match meant {
            Some(meant) => assert!(detail.ends_with(&format!("did you mean '{meant}'?")), "{detail}"),
            None => assert!(!detail.contains("did you mean"), "{detail}"),
        }
    }
    // What a route takes, and a credential, pass; so does the SDK's array form.
    let fine = [
        format!("/new/v2.0/analytics?projectId={project}&contactId=c1&limit=5"),
        format!("/new/v2.0/conversations?projectId={project}&contactIds[]=c1&contactIds=c2"),
        format!("/new/v2.0/projects?limit=5&apikey={}", app.api_key),
    ];
    for path in fine {
        let response = app.get(&path).send().await.expect("an answer");
        assert_eq!(response.status(), StatusCode::OK, "{path}: {}", response.text().await.unwrap());
    }
}

#[tokio::test]
async fn a_misspelt_field_names_the_field_meant() {
    let app = spawn_app().await;
    let project = app.create_project().await;
    let record = json!([{"projectId": project, "contactId": "c", "sessionId": "s", "inputId": "i", "ratng": 5}]);
    let path = "/new/v2.0/analytics/records";
    let response = app.request(Method::POST, path).json(&record).send().await.expect("an answer");
    let body = crate::helpers::assert_invalid(response, 1005, path, "ratng").await;
    assert_eq!(
        body["detail"],
        "Validation failed. 'ratng' is not a field of the analytics record; did you mean 'rating'?"
    );
    let path = "/new/v2.0/projects";
    let response = app.request(Method::POST, path).json(&json!({"nme": "x"})).send().await.expect("an answer");
    let body = crate::helpers::assert_invalid(response, 1005, path, "nme").await;
    assert!(body["detail"].as_str().unwrap().ends_with("did you mean 'name'?"), "{body}");
}

#[tokio::test]
async fn errors_say_the_line_once_and_hint_at_ndjson_sent_as_json() {
    let app = spawn_app().await;
    let project = app.create_project().await;
    let path = "/new/v2.0/analytics/records";
    let good = format!(r#"{{"projectId":"{project}","contactId":"c","sessionId":"s","inputId":"i1"}}"#);
    let send = |body: String, media: &'static str| {
        app.request(Method::POST, path).header("Content-Type", media).body(body).send()
    };

    // A field of line 3 (a blank line counts) is named with its line, in the text and the details.
    let missing = format!(r#"{{"projectId":"{project}","contactId":"c","sessionId":"s"}}"#);
    let response = send(format!("{good}\n\n{missing}\n"), "application/x-ndjson").await.unwrap();
    let body = assert_problem(response, 400, 1000, path).await;
    assert_eq!(body["detail"], "Validation failed. Line 3: 'inputId' is required.");
    assert_eq!((body["details"]["line"].clone(), body["details"]["index"].clone()), (json!(3), json!(1)));

    // Broken JSON on a line: its line and column, once.
    let response = send(format!("{good}\n{{\"projectId\": oops}}\n"), "application/x-ndjson").await.unwrap();
    let body = assert_problem(response, 400, 1005, path).await;
    assert_eq!(body["detail"], "Validation failed. Line 2 is not valid JSON at column 15: expected value.");

    // NDJSON sent as JSON: where it stops being one value, and what to send instead.
    let response = send(format!("{good}\n{good}\n"), "application/json").await.unwrap();
    let body = assert_problem(response, 400, 1005, path).await;
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("Validation failed. The body is not valid JSON at line 2, column 1: trailing characters")
    );
    assert!(detail.ends_with("send it with Content-Type: application/x-ndjson."), "{detail}");
    assert_eq!(detail.matches("line 2").count(), 1, "{detail}");
    // Plain broken JSON gets no such hint.
    let response = send("[{\"projectId\": }]".into(), "application/json").await.unwrap();
    let body = assert_problem(response, 400, 1005, path).await;
    assert!(!body["detail"].as_str().unwrap().contains("NDJSON"), "{body}");
}

#[tokio::test]
async fn a_missing_field_is_1000_on_every_route() {
    let app = spawn_app().await;
    let project = app.create_project().await;
    let cases = [
        (
            Method::PATCH,
            "/new/v2.0/analytics".to_owned(),
            json!({"projectId": project, "contactId": "c"}),
            "properties",
        ),
        (Method::PATCH, "/new/v2.0/analytics".to_owned(), json!({"contactId": "c", "properties": {}}), "projectId"),
        (Method::POST, "/new/v2.0/analytics/records".to_owned(), json!([{"projectId": project}]), "contactId"),
        (Method::POST, "/new/v2.0/conversations/messages".to_owned(), json!([{"projectId": project}]), "messageId"),
        (Method::POST, "/new/v2.0/projects".to_owned(), json!({}), "name"),
        (Method::POST, "/new/v2.0/users".to_owned(), json!({"name": "x"}), "email"),
        (Method::DELETE, format!("/new/v2.0/analytics/{project}"), json!({}), "contactIds"),
        (Method::POST, format!("/new/v2.0/projects/{project}/goals"), json!({"name": "g"}), "steps"),
        (Method::POST, format!("/new/v2.0/projects/{project}/members"), json!({}), "userId"),
    ];
    for (method, path, body, field) in cases {
        let response = app.request(method, &path).json(&body).send().await.unwrap();
        let problem = assert_problem(response, 400, 1000, &path).await;
        assert_eq!(problem["details"]["field"], field, "{path}: {problem}");
        let detail = problem["detail"].as_str().unwrap();
        assert!(detail.starts_with(&format!("Validation failed. '{field}' is required")), "{detail}");
    }
}
