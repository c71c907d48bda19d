//! The representations a client can ask for: how much control information (`odata.metadata`),
//! nulls left out (`Prefer: omit-values=nulls`), CSDL JSON, and the refusals for what is not
//! offered (Atom or XML data, OData below 4.0).

use serde_json::{Value as Json, json};

use super::{numbered_record, odata_error, spawn_unlimited};
use crate::helpers::{Engine, TestApp};

/// A server with three records, one of them without an intent, and the project.
async fn seeded() -> (TestApp, String) {
    let app = spawn_unlimited(Engine::Sqlite).await;
    let project = app.create_project().await;
    let records: Vec<Json> = (0..3)
        .map(|n| {
            let intent = if n == 1 { Json::Null } else { json!("refund") };
            numbered_record(&project, n, json!({"intent": intent, "handoverEscalations": n, "trackedGoals": ["buy"]}))
        })
        .collect();
    app.ingest_new(&records).await;
    (app, project)
}

/// A GET with extra headers; the status, content type, `Preference-Applied` and JSON body.
async fn get(app: &TestApp, path: &str, headers: &[(&str, &str)]) -> (u16, String, Option<String>, Json) {
    let mut request = app.client.get(app.url(path)).header("apikey", &app.api_key);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = |name: &str| response.headers().get(name).map(|v| v.to_str().unwrap().to_owned());
    let (content_type, applied) = (text("content-type").unwrap_or_default(), text("preference-applied"));
    let body = response.json().await.unwrap_or(Json::Null);
    (status, content_type, applied, body)
}

const PAGE: &str = "/v2.4/Analytics?$select=inputId,intent,handoverEscalations,timestamp,trackedGoals&$orderby=inputId";

#[tokio::test]
async fn metadata_levels_none_minimal_and_full() {
    let (mut app, _) = seeded().await;
    let (_, content_type, _, minimal) = get(&app, PAGE, &[]).await;
    assert_eq!(content_type, "application/json;odata.metadata=minimal");
    assert!(
        minimal["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with("$metadata#Analytics(inputId,intent,handoverEscalations,timestamp,trackedGoals)")
    );
    assert_eq!(minimal["value"][0].as_object().unwrap().len(), 5);

    // none: no context, nothing but the data (and count and next link where they apply).
    for (path, headers) in [
        (format!("{PAGE}&$count=true&$format=application/json;odata.metadata=none"), vec![]),
        (format!("{PAGE}&$count=true"), vec![("accept", "application/json;odata.metadata=none")]),
    ] {
        let (status, content_type, _, none) = get(&app, &path, &headers).await;
        assert_eq!((status, content_type.as_str()), (200, "application/json;odata.metadata=none"), "{path}");
        assert_eq!(none.as_object().unwrap().keys().collect::<Vec<_>>(), ["@odata.count", "value"], "{none}");
        assert_eq!(none["value"], minimal["value"]);
    }

    // full: each entity's id and type, and the type of what JSON does not tell.
    let (_, content_type, _, full) =
        get(&app, PAGE, &[("accept", "application/json;odata.metadata=full;q=0.9, */*;q=0.1")]).await;
    assert_eq!(content_type, "application/json;odata.metadata=full");
    let first = &full["value"][0];
    let id = app.odata_json("/v2.4/Analytics?$select=id&$orderby=inputId&$top=1").await["value"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let root = minimal["@odata.context"].as_str().unwrap().split("/$metadata").next().unwrap().to_owned();
    assert_eq!(first["@odata.id"], format!("{root}/Analytics('{id}')"), "{first}");
    assert_eq!(first["@odata.type"], "#parley.AnalyticsRecord");
    assert_eq!(first["handoverEscalations@odata.type"], "#Int64");
    assert_eq!(first["timestamp@odata.type"], "#DateTimeOffset");
    assert_eq!(first["trackedGoals@odata.type"], "#Collection(String)");
    assert!(first.get("intent@odata.type").is_none(), "strings need no annotation: {first}");
    assert_eq!(first["intent"], minimal["value"][0]["intent"]);
    // An aggregated row is no stored entity: it has no id.
    let (_, _, _, grouped) = get(
        &app,
        "/v2.4/Analytics?$apply=groupby((intent),aggregate($count%20as%20n))&$format=json;odata.metadata=full",
        &[],
    )
    .await;
    assert_eq!(grouped["value"][0]["@odata.id"], Json::Null, "{grouped}");
    assert_eq!(grouped["value"][0]["n@odata.type"], "#Int64");
    // One entity by its key, with full metadata.
    let (_, _, _, entity) = get(&app, &format!("/v2.4/Analytics('{id}')?$format=json;odata.metadata=full"), &[]).await;
    assert_eq!(entity["@odata.id"], first["@odata.id"]);

    let error = odata_error(app.odata_get(&format!("{PAGE}&$format=json;odata.metadata=most")).await, 400).await;
    assert!(error["message"].as_str().unwrap().contains("use none, minimal or full"), "{error}");
    app.stop().await;
}

#[tokio::test]
async fn nulls_are_left_out_when_preferred() {
    let (mut app, _) = seeded().await;
    let (_, _, applied, body) = get(&app, PAGE, &[("prefer", "omit-values=nulls, odata.maxpagesize=2")]).await;
    assert_eq!(applied.as_deref(), Some("odata.maxpagesize=2, omit-values=nulls"));
    let second = body["value"][1].as_object().unwrap();
    assert!(!second.contains_key("intent"), "{second:?}");
    assert_eq!(second.len(), 4);
    assert_eq!(body["value"][0]["intent"], "refund");
    let (_, _, applied, body) = get(&app, PAGE, &[]).await;
    assert_eq!(applied, None);
    assert_eq!(body["value"][1]["intent"], Json::Null);
    app.stop().await;
}

#[tokio::test]
async fn csdl_json_and_the_refusals() {
    let (mut app, _) = seeded().await;
    for format in ["json", "application/json", "JSON"] {
        let (status, content_type, _, document) = get(&app, &format!("/v2.4/$metadata?$format={format}"), &[]).await;
        assert_eq!((status, content_type.as_str()), (200, "application/json"));
        assert_eq!(document["$Version"], "4.01");
        assert_eq!(document["parley"]["Container"]["Analytics"]["$Type"], "parley.AnalyticsRecord");
        assert!(
            document["parley"]["Container"]["@Capabilities.FilterFunctions"]
                .as_array()
                .unwrap()
                .contains(&json!("matchesPattern"))
        );
    }
    let xml = app.odata_get("/v2.4/$metadata?format=xml").await.text().await.unwrap();
    assert!(xml.starts_with("<?xml") && xml.contains("Capabilities.FilterFunctions"));
    let error = odata_error(app.odata_get("/v2.4/$metadata?$format=atom").await, 400).await;
    assert!(error["message"].as_str().unwrap().contains("use xml or json"));

    // Atom or XML only: 406, in the OData error format.
    for accept in ["application/atom+xml", "application/xml;q=0.9, application/atom+xml"] {
        let response =
            app.client.get(app.url(PAGE)).header("apikey", &app.api_key).header("accept", accept).send().await.unwrap();
        let error = odata_error(response, 406).await;
        assert!(error["message"].as_str().unwrap().contains("application/json, text/csv"), "{accept}: {error}");
    }
    // A client that takes OData below 4.0 only is told so; 4.0 and 4.01 are served.
    for (max, status) in [("3.0", 400), ("2.0", 400), ("4.0", 200), ("4.01", 200)] {
        let response = app
            .client
            .get(app.url(PAGE))
            .header("apikey", &app.api_key)
            .header("odata-maxversion", max)
            .send()
            .await
            .unwrap();
        if status == 200 {
            assert_eq!(response.status(), 200, "OData-MaxVersion {max}");
        } else {
            let error = odata_error(response, status).await;
            assert!(error["message"].as_str().unwrap().contains(&format!("OData-MaxVersion is {max}")), "{error}");
        }
    }
    app.stop().await;
}

#[tokio::test]
async fn one_property_its_raw_value_the_named_key_and_parameter_aliases() {
    let (mut app, project) = seeded().await;
    let page = app.odata_json("/v2.4/Analytics?$select=id,intent&$orderby=inputId").await;
    let (with_intent, without) = (page["value"][0]["id"].as_str().unwrap(), page["value"][1]["id"].as_str().unwrap());
    // The named-key form is the same entity.
    let bare = app.odata_json(&format!("/v2.4/Analytics('{with_intent}')")).await;
    let named = app.odata_json(&format!("/v2.4/Analytics(id='{with_intent}')")).await;
    assert_eq!(bare, named);
    let older = app.odata_json(&format!("/v2.3/Analytics(_id='{with_intent}')?$select=intent")).await;
    assert_eq!(older["intent"], "refund");
    // One property, and its raw value.
    let (status, _, _, property) = get(&app, &format!("/v2.4/Analytics('{with_intent}')/intent"), &[]).await;
    assert_eq!(status, 200);
    assert!(
        property["@odata.context"].as_str().unwrap().ends_with(&format!("$metadata#Analytics('{with_intent}')/intent"))
    );
    assert_eq!(property["value"], "refund");
    assert_eq!(property.as_object().unwrap().len(), 2, "{property}");
    let response = app.odata_get(&format!("/v2.4/Analytics('{with_intent}')/handoverEscalations/$value")).await;
    assert_eq!(response.headers()["content-type"], "text/plain;charset=utf-8");
    assert_eq!(response.text().await.unwrap(), "0");
    let raw = app.odata_get(&format!("/v2.4/Analytics('{with_intent}')/intent/$value")).await.text().await.unwrap();
    assert_eq!(raw, "refund");
    let (_, _, _, goals) = get(&app, &format!("/v2.4/Analytics('{with_intent}')/trackedGoals"), &[]).await;
    assert_eq!(goals["value"], json!(["buy"]));
    // A null property is no content.
    for path in [format!("/v2.4/Analytics('{without}')/intent"), format!("/v2.4/Analytics('{without}')/intent/$value")]
    {
        let response = app.odata_get(&path).await;
        assert_eq!(response.status(), 204, "{path}");
        assert!(response.text().await.unwrap().is_empty());
    }
    // Refusals.
    let error = odata_error(app.odata_get(&format!("/v2.4/Analytics('{with_intent}')/nope")).await, 404).await;
    assert!(error["message"].as_str().unwrap().contains("'nope' is not a property of AnalyticsRecord"), "{error}");
    let error =
        odata_error(app.odata_get(&format!("/v2.4/Analytics('{with_intent}')/trackedGoals/$value")).await, 400).await;
    assert!(error["message"].as_str().unwrap().contains("has no raw value"), "{error}");
    let error = odata_error(app.odata_get(&format!("/v2.4/Analytics(inputId='{with_intent}')")).await, 400).await;
    assert!(error["message"].as_str().unwrap().contains("its key is id"), "{error}");
    odata_error(app.odata_get("/v2.4/Analytics('nothing-here')/intent").await, 404).await;

    // Parameter aliases, in $filter and in $apply.
    let scoped = "projectId eq @project and intent eq @intent and handoverEscalations ge @least";
    let aliased = app
        .odata_json(&format!(
            "/v2.4/Analytics?$select=inputId&$orderby=inputId&$filter={}&@project='{project}'&@intent='refund'&@least=1",
            super::enc(scoped)
        ))
        .await;
    let written = app
        .odata_json(&format!(
            "/v2.4/Analytics?$select=inputId&$orderby=inputId&$filter={}",
            super::enc(&format!("projectId eq '{project}' and intent eq 'refund' and handoverEscalations ge 1"))
        ))
        .await;
    assert_eq!(aliased["value"], written["value"]);
    assert_eq!(aliased["value"].as_array().unwrap().len(), 1);
    let error = odata_error(app.odata_get("/v2.4/Analytics?$filter=intent%20eq%20@p&@p='open").await, 400).await;
    assert_eq!(error["target"], "@p");
    app.stop().await;
}

/// A JSON batch sent with the admin's key.
async fn batch_of(app: &TestApp, body: &Json) -> reqwest::Response {
    raw_batch(app, "application/json", body.to_string()).await
}

/// A batch body of any content type, sent with the admin's key.
async fn raw_batch(app: &TestApp, content_type: &str, body: impl Into<reqwest::Body>) -> reqwest::Response {
    let request = app.client.post(app.url("/v2.4/$batch")).header("apikey", &app.api_key);
    request.header("content-type", content_type).body(body).send().await.unwrap()
}

#[tokio::test]
async fn batches_of_reads_in_json_and_multipart() {
    let (mut app, _) = seeded().await;
    let alone = app.odata_json("/v2.4/Analytics?$select=inputId&$orderby=inputId&$top=2").await;
    let batch = json!({"requests": [
        {"id": "page", "method": "GET", "url": "Analytics?$select=inputId&$orderby=inputId&$top=2"},
        {"id": "count", "method": "get", "url": "/v2.4/Analytics/$count"},
        {"id": "bad", "method": "GET", "url": "Analytics?$filter=nope eq 1"},
        {"id": "write", "method": "POST", "url": "Analytics"},
        {"id": "none", "method": "GET", "url": "Analytics?$top=1", "headers": {"accept": "application/json;odata.metadata=none"}},
    ]});
    let response = batch_of(&app, &batch).await;
    assert_eq!(response.status(), 200);
    let body: Json = response.json().await.unwrap();
    let responses = body["responses"].as_array().unwrap();
    let ids: Vec<&str> = responses.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["page", "count", "bad", "write", "none"]);
    assert_eq!(responses[0]["status"], 200);
    assert_eq!(responses[0]["body"], alone, "a read in a batch answers as it does alone");
    assert_eq!(responses[1]["body"], "3");
    assert_eq!(responses[2]["status"], 400);
    assert!(responses[2]["body"]["error"]["message"].as_str().unwrap().contains("'nope' is not a property"));
    assert_eq!(responses[3]["status"], 405);
    assert_eq!(responses[3]["body"]["error"]["code"], "1013", "the endpoint's own error body");
    assert!(responses[3]["body"]["error"]["innererror"]["traceId"].is_string());
    assert_eq!(responses[4]["headers"]["content-type"], "application/json;odata.metadata=none");

    // The multipart form of OData 4.0, with a change set (writes, refused each).
    let multipart = "--batch_1\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\nContent-ID: a\r\n\r\n\
                     GET Analytics?$select=inputId&$orderby=inputId&$top=2 HTTP/1.1\r\nAccept: application/json\r\n\r\n\r\n\
                     --batch_1\r\nContent-Type: multipart/mixed; boundary=changeset_1\r\n\r\n\
                     --changeset_1\r\nContent-Type: application/http\r\n\r\nDELETE Analytics('x') HTTP/1.1\r\n\r\n\r\n--changeset_1--\r\n\
                     --batch_1--\r\n";
    let response = raw_batch(&app, "multipart/mixed; boundary=batch_1", multipart).await;
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    let boundary = content_type.split("boundary=").nth(1).expect("a boundary").to_owned();
    let text = response.text().await.unwrap();
    let parts: Vec<&str> = text.split(&format!("--{boundary}")).skip(1).filter(|p| !p.starts_with("--")).collect();
    assert_eq!(parts.len(), 2, "{text}");
    assert!(parts[0].contains("Content-ID: a") && parts[0].contains("HTTP/1.1 200 OK"), "{}", parts[0]);
    let json_start = parts[0].find("{\"@odata.context\"").expect("the page's body");
    let page: Json = serde_json::from_str(parts[0][json_start..].trim_end()).unwrap();
    assert_eq!(page, alone);
    assert!(parts[1].contains("HTTP/1.1 405 Method Not Allowed"), "{}", parts[1]);

    // Refusals of the batch itself.
    let response = app.client.post(app.url("/v2.4/$batch")).json(&batch).send().await.unwrap();
    odata_error(response, 401).await;
    let too_many = json!({"requests": (0..101).map(|_| json!({"url": "Analytics/$count"})).collect::<Vec<_>>()});
    let response = batch_of(&app, &too_many).await;
    assert!(odata_error(response, 400).await["message"].as_str().unwrap().contains("at most 100 requests"));
    let response = raw_batch(&app, "text/plain", "GET x").await;
    odata_error(response, 415).await;
    for (body, says) in [
        (json!({"requests": {"url": "Analytics"}}), "an array 'requests'"),
        (json!({"requests": [{"method": "GET"}]}), "Request 0 of the batch has no 'url'"),
    ] {
        let response = batch_of(&app, &body).await;
        let error = odata_error(response, 400).await;
        assert!(error["message"].as_str().unwrap().contains(says), "{body}: {error}");
    }
    let response = raw_batch(
        &app,
        "multipart/mixed; boundary=b",
        "--b\r\nContent-Type: application/http\r\n\r\nnonsense\r\n--b--\r\n",
    )
    .await;
    assert!(
        odata_error(response, 400).await["message"].as_str().unwrap().contains("does not start with a request line")
    );
    let huge = json!({"requests": [{"url": "x".repeat(1024 * 1024)}]});
    let response = batch_of(&app, &huge).await;
    odata_error(response, 413).await;
    // A read outside the service is refused in its place; the others are answered.
    let outside =
        json!({"requests": [{"id": "a", "url": "/new/v2.0/analytics"}, {"id": "b", "url": "Analytics/$count"}]});
    let response = batch_of(&app, &outside).await;
    let body: Json = response.json().await.unwrap();
    assert_eq!(body["responses"][0]["status"], 400);
    assert!(
        body["responses"][0]["body"]["error"]["message"].as_str().unwrap().contains("not an address of this service")
    );
    assert_eq!(body["responses"][1]["body"], "3");
    let response = raw_batch(&app, "application/json", "{").await;
    assert!(odata_error(response, 400).await["message"].as_str().unwrap().contains("not valid JSON"));
    let response =
        app.client.post(app.url("/v2.4/Analytics")).header("apikey", &app.api_key).body("{}").send().await.unwrap();
    odata_error(response, 405).await;
    app.stop().await;
}
