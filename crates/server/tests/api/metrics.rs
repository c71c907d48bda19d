//! `GET /metrics`, read by Prometheus' own text parser (the Python client's), after traffic whose
//! counts the test knows.

use std::process::Command;

use serde_json::{Value as Json, json};

use crate::helpers::{Engine, erase_and_wait, on_both_engines, python_with, record, spawn_app_on};

on_both_engines!(the_metrics_count_what_this_node_did);

/// The samples of the page as the parser reads them: name, labels and value, one JSON object
/// each (the parser fails on anything that is not the text format).
fn parsed(page: &str) -> Vec<Json> {
    let bin = python_with("prometheus_client==0.21.1", "import prometheus_client");
    let script = "import sys, json\n\
                  from prometheus_client.parser import text_string_to_metric_families\n\
                  out = []\n\
                  for family in text_string_to_metric_families(sys.stdin.read()):\n\
                  \x20   for s in family.samples:\n\
                  \x20       out.append({'family': family.name, 'type': family.type, 'name': s.name, 'labels': s.labels, 'value': s.value})\n\
                  print(json.dumps(out))\n";
    let mut child = Command::new(bin.join("python"))
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    child.stdin.take().unwrap().write_all(page.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "the parser refused the page: {}\n{page}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// The value of the sample named `name` whose labels include `labels`.
fn value(samples: &[Json], name: &str, labels: Json) -> Option<f64> {
    samples
        .iter()
        .find(|s| s["name"] == name && labels.as_object().unwrap().iter().all(|(k, v)| s["labels"][k] == *v))
        .and_then(|s| s["value"].as_f64())
}

async fn the_metrics_count_what_this_node_did(engine: Engine) {
    let postgres = !matches!(engine, Engine::Sqlite);
    let mut app = spawn_app_on(engine).await;
    let project = app.create_project().await;
    let records: Vec<Json> = (0..7).map(|n| record(&project, "c1", "s1", &format!("i{n}"))).collect();
    app.ingest_new(&records).await;
    // Two duplicates, and one new record.
    let again: Vec<Json> = records[..2].iter().cloned().chain([record(&project, "c1", "s1", "i9")]).collect();
    assert_eq!(app.ingest(&again).await.status(), 201);
    let update = json!({"projectId": project, "contactId": "c1", "properties": {"rating": 4}});
    let response = app.patch(&update).await;
    assert_eq!(response.status(), 204);
    for _ in 0..3 {
        assert_eq!(app.get("/new/v2.0/nothing-here").send().await.unwrap().status(), 404);
    }
    // An erasure task, which the background worker runs.
    let task = erase_and_wait(&app, &project, json!({"contactIds": ["c1"]})).await;
    assert_eq!(task["status"], "done", "{task}");

    let response = app.anonymous(reqwest::Method::GET, "/metrics").send().await.unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
    let page = response.text().await.unwrap();
    let samples = parsed(&page);

    let rows =
        |outcome: &str| value(&samples, "parley_rows_total", json!({"collection": "records", "outcome": outcome}));
    assert_eq!(rows("inserted"), Some(8.0), "{page}");
    assert_eq!(rows("duplicate"), Some(2.0));
    assert_eq!(rows("updated"), Some(8.0), "every record of the contact");
    let ingest = json!({"method": "POST", "route": "/new/v2.0/analytics/records", "status": "201"});
    assert_eq!(value(&samples, "parley_http_requests_total", ingest), Some(2.0), "{page}");
    let missing = json!({"method": "GET", "route": "unmatched", "status": "404"});
    assert_eq!(value(&samples, "parley_http_requests_total", missing), Some(3.0));
    // The durations: a histogram whose buckets count up to all of its requests.
    let route = json!({"route": "/new/v2.0/analytics/records"});
    let count = value(&samples, "parley_http_request_duration_seconds_count", route.clone()).unwrap();
    let mut everything = route.clone();
    everything["le"] = json!("+Inf");
    assert_eq!(count, 2.0);
    assert_eq!(value(&samples, "parley_http_request_duration_seconds_bucket", everything), Some(count));
    assert!(value(&samples, "parley_http_request_duration_seconds_sum", route).unwrap() > 0.0);
    // The store's own figures.
    if postgres {
        let in_use = value(&samples, "parley_store_pool_connections", json!({"state": "in_use"})).unwrap();
        let max = value(&samples, "parley_store_pool_size_max", json!({})).unwrap();
        assert!(in_use <= max && max >= 1.0, "{page}");
    } else {
        let groups = value(&samples, "parley_store_write_groups_total", json!({})).unwrap();
        let writes = value(&samples, "parley_store_writes_total", json!({})).unwrap();
        assert!(groups >= 3.0 && writes >= groups, "{page}");
        // Every committed transaction's time, in a histogram whose buckets count up to all of them.
        let commits = value(&samples, "parley_store_commit_duration_seconds_count", json!({})).unwrap();
        let all = value(&samples, "parley_store_commit_duration_seconds_bucket", json!({"le": "+Inf"})).unwrap();
        assert!(commits >= groups && all == commits, "{page}");
        assert!(value(&samples, "parley_store_commit_duration_seconds_sum", json!({})).unwrap() > 0.0);
    }
    // The access cache: the key's first lookup went to the database, the later ones did not.
    let lookups = |kind: &str, result: &str| {
        value(&samples, "parley_cache_lookups_total", json!({"kind": kind, "result": result})).unwrap()
    };
    assert!(lookups("api_key", "miss") >= 1.0 && lookups("api_key", "hit") >= 3.0, "{page}");
    assert!(lookups("project", "miss") >= 1.0 && lookups("project", "hit") >= 2.0, "{page}");
    // The background work: the erasure task, its batches, and nothing running now.
    let step = |step: &str| {
        value(&samples, "parley_background_steps_total", json!({"work": "erasure", "step": step})).unwrap_or(0.0)
    };
    assert_eq!((step("task_started"), step("task_done")), (1.0, 1.0), "{page}");
    assert!(step("batch") >= 1.0, "{page}");
    assert_eq!(value(&samples, "parley_background_tasks_running", json!({})), Some(0.0));
    assert_eq!(rows("deleted"), Some(8.0), "the contact's records");
    assert!(value(&samples, "parley_uptime_seconds", json!({})).unwrap() > 0.0);
    // Every metric the Grafana dashboard draws is one this page declares, on this engine or the other.
    let dashboard =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/grafana-dashboard.json")).unwrap();
    let engine_specific = ["parley_store_write", "parley_store_commit", "parley_store_pool"];
    for name in dashboard.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).filter(|w| w.starts_with("parley_"))
    {
        let family = ["_bucket", "_sum", "_count"].iter().fold(name, |n, suffix| n.strip_suffix(suffix).unwrap_or(n));
        let declared = page.contains(&format!("# TYPE {family} "));
        assert!(
            declared || engine_specific.iter().any(|p| family.starts_with(p)),
            "the dashboard draws {name}: {page}"
        );
    }
    app.stop().await;
}
