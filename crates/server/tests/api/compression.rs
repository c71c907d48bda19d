//! Answers are compressed when the client accepts it (gzip or brotli), and only then: the
//! decoded body is the one sent plain, for data, documents and errors alike.

use std::io::Read;

use reqwest::header::{ACCEPT_ENCODING, CONTENT_ENCODING, VARY};
use serde_json::{Value as Json, json};

use crate::helpers::{TestApp, record, spawn_app};

/// The status, `Content-Encoding` and decoded body of a GET sent with `accept` as the
/// encodings the client takes.
async fn fetch(app: &TestApp, path: &str, accept: Option<&str>) -> (u16, Option<String>, Vec<u8>) {
    let mut request = app.client.get(app.url(path)).header("apikey", &app.api_key);
    if let Some(accept) = accept {
        request = request.header(ACCEPT_ENCODING, accept);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let encoding = response.headers().get(CONTENT_ENCODING).map(|v| v.to_str().unwrap().to_owned());
    if encoding.is_some() {
        let vary =
            response.headers().get_all(VARY).iter().map(|v| v.to_str().unwrap().to_lowercase()).collect::<Vec<_>>();
        assert!(vary.iter().any(|v| v.contains("accept-encoding")), "{path}: Vary {vary:?}");
    }
    let bytes = response.bytes().await.unwrap().to_vec();
    let decoded = match encoding.as_deref() {
        None => bytes,
        Some("gzip") => {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(&bytes[..]).read_to_end(&mut out).unwrap();
            out
        }
        Some("br") => {
            let mut out = Vec::new();
            brotli::Decompressor::new(&bytes[..], 4096).read_to_end(&mut out).unwrap();
            out
        }
        Some(other) => panic!("{path}: unexpected Content-Encoding {other}"),
    };
    (status, encoding, decoded)
}

#[tokio::test]
async fn answers_are_compressed_as_the_client_accepts() {
    let mut app = spawn_app().await;
    let project = app.create_project().await;
    let records: Vec<Json> = (0..300)
        .map(|n| {
            let mut r = record(&project, &format!("c{}", n % 9), &format!("s{}", n % 31), &format!("i{n:04}"));
            r["inputText"] = json!(format!("I would like a refund for order {n}, please"));
            r
        })
        .collect();
    app.ingest_new(&records).await;
    let paths = [
        "/v2.4/Analytics?$top=300".to_owned(),
        "/v2.4/$metadata".to_owned(),
        format!("/new/v2.0/analytics?projectId={project}&limit=100"),
        "/v2.4/Analytics?$filter=nope%20eq%201".to_owned(),
    ];
    for path in &paths {
        let (status, encoding, plain) = fetch(&app, path, None).await;
        assert_eq!(encoding, None, "{path}: nothing accepted, nothing compressed");
        assert!(plain.len() > 200, "{path}: {} bytes", plain.len());
        for (accept, expected) in
            [("gzip", "gzip"), ("br", "br"), ("br;q=0.5, gzip;q=1.0", "gzip"), ("gzip;q=0, br", "br")]
        {
            let (compressed_status, encoding, decoded) = fetch(&app, path, Some(accept)).await;
            assert_eq!(compressed_status, status, "{path} with {accept}");
            assert_eq!(encoding.as_deref(), Some(expected), "{path} with {accept}");
            let same = if path.contains("$top") || path.contains("analytics?") {
                // Data answers: the same rows (a list's cursor link may differ in nothing else).
                serde_json::from_slice::<Json>(&decoded).unwrap() == serde_json::from_slice::<Json>(&plain).unwrap()
            } else if path.contains("nope") {
                // An error: the same body but for its trace id.
                let strip = |bytes: &[u8]| {
                    let mut body: Json = serde_json::from_slice(bytes).unwrap();
                    body["error"]["innererror"]["traceId"] = Json::Null;
                    body
                };
                strip(&decoded) == strip(&plain)
            } else {
                decoded == plain
            };
            assert!(same, "{path} with {accept}: the decoded body differs");
        }
    }
    let (_, encoding, _) = fetch(&app, "/v2.4/Analytics?$top=300", Some("identity")).await;
    assert_eq!(encoding, None);
    app.stop().await;
}
