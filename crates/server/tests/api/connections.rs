//! Connections (docs/operations.md, "Connections"): idle and slow clients are cut off, a node
//! holding as many connections as it serves still answers its health probes and refuses the
//! rest cleanly, and requests the HTTP layer refuses before routing get the problem body.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use parley_server::connections::SPARE_CONNECTIONS;
use reqwest::Method;
use serde_json::{Value as Json, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{Engine, RawResponse, send_bytes, spawn_app, spawn_app_with};

/// A request on a connection kept open, as a client reusing connections sends it.
fn kept_alive(target: &str, key: Option<&str>) -> String {
    let key = key.map(|key| format!("X-API-Key: {key}\r\n")).unwrap_or_default();
    format!("GET {target} HTTP/1.1\r\nHost: parley\r\n{key}\r\n")
}

/// Reads one answer with a body of `Content-Length` bytes from a connection kept open.
async fn read_answer(stream: &mut TcpStream) -> RawResponse {
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&bytes[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length:"))
                .map(|n| n.trim().parse().expect("a length"))
                .expect("answers here carry Content-Length");
            if bytes.len() >= end + 4 + length {
                return RawResponse::parse(&bytes[..end + 4 + length]);
            }
        }
        let n = stream.read(&mut chunk).await.expect("the answer is read");
        assert!(n > 0, "the connection closed before the answer was whole: {:?}", String::from_utf8_lossy(&bytes));
        bytes.extend_from_slice(&chunk[..n]);
    }
}

/// Whether the server closes `stream` within `within`, sending nothing.
async fn closed_by_server(stream: &mut TcpStream, within: Duration) -> bool {
    let mut byte = [0u8; 1];
    matches!(tokio::time::timeout(within, stream.read(&mut byte)).await, Ok(Ok(0)) | Ok(Err(_)))
}

async fn connect(addr: SocketAddr) -> TcpStream {
    TcpStream::connect(addr).await.expect("a connection")
}

/// Checks a refusal made before routing: its status, and a problem body with the catalogue's
/// code, a detail saying `detail`, and the trace id of the header.
fn assert_refused(answer: &RawResponse, status: u16, code: u16, detail: &str) {
    assert_eq!(answer.status, status, "{:?}", String::from_utf8_lossy(&answer.body));
    assert_eq!(answer.header("content-type"), Some("application/problem+json"));
    assert_eq!(answer.header("connection"), Some("close"));
    let body = answer.json();
    assert_eq!((body["status"].as_u64(), body["code"].as_u64()), (Some(status.into()), Some(code.into())), "{body}");
    assert!(body["detail"].as_str().is_some_and(|d| d.contains(detail)), "{body}");
    let trace = body["traceId"].as_str().expect("a trace id");
    assert!(trace.starts_with("api--"), "{trace}");
    assert_eq!(answer.header("x-trace-id"), Some(trace));
}

#[tokio::test]
async fn requests_the_http_layer_refuses_get_a_problem_body() {
    let app = spawn_app().await;
    let not_http = "is not well-formed HTTP/1.1";
    let garbage = send_bytes(app.addr, b"GARBAGE\r\n\r\n").await;
    assert_refused(&garbage, 400, 400, not_http);
    let space_in_address = send_bytes(app.addr, b"GET /health live HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_refused(&space_in_address, 400, 400, not_http);
    let control_in_header = send_bytes(app.addr, b"GET /health/live HTTP/1.1\r\nHost: x\r\nX-A: \x01\r\n\r\n").await;
    assert_refused(&control_in_header, 400, 400, not_http);
    let bad_length =
        send_bytes(app.addr, b"POST /health/live HTTP/1.1\r\nHost: x\r\nContent-Length: ten\r\n\r\n").await;
    assert_refused(&bad_length, 400, 400, not_http);
    let many: String = (0..150).map(|i| format!("X-Header-{i}: a\r\n")).collect();
    let many_headers =
        send_bytes(app.addr, format!("GET /health/live HTTP/1.1\r\nHost: x\r\n{many}\r\n").as_bytes()).await;
    assert_refused(&many_headers, 431, 431, "more header fields (at most 100)");
    let long = format!("GET /health/live?{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(70_000));
    assert_refused(&send_bytes(app.addr, long.as_bytes()).await, 400, 400, "address is too long");

    // The application's own refusals are left as they are, and the node goes on serving.
    let ours = app.raw("GET", "/health/live", &[("X-Big", &"b".repeat(17 * 1024))], b"").await;
    assert_refused(&ours, 431, 431, "The request headers exceed 16384 bytes.");
    let live = app.anonymous(Method::GET, "/health/live").send().await.unwrap();
    assert_eq!(live.json::<Json>().await.unwrap(), json!({"status": "ok"}));
}

#[tokio::test]
async fn idle_and_slow_connections_are_closed_after_the_header_timeout() {
    let app = spawn_app_with(Engine::Sqlite, |config| config.header_timeout_secs = 1).await;
    let mut idle = connect(app.addr).await;
    let mut slow = connect(app.addr).await;
    slow.write_all(b"GET /health/live HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let mut reused = connect(app.addr).await;
    let started = Instant::now();
    // Within the timeout, a kept-alive connection serves one request after another.
    for _ in 0..4 {
        reused.write_all(kept_alive("/health/live", None).as_bytes()).await.unwrap();
        let answer = read_answer(&mut reused).await;
        assert_eq!((answer.status, answer.json()), (200, json!({"status": "ok"})));
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(started.elapsed() > Duration::from_secs(1), "the reused connection outlived one timeout");
    for (name, stream) in [("idle", &mut idle), ("slow", &mut slow), ("reused", &mut reused)] {
        assert!(closed_by_server(stream, Duration::from_secs(3)).await, "the {name} connection was closed");
    }
    // New connections are served as before.
    let live = app.anonymous(Method::GET, "/health/live").send().await.unwrap();
    assert_eq!(live.json::<Json>().await.unwrap(), json!({"status": "ok"}));
}

#[tokio::test]
async fn beyond_max_connections_health_answers_and_the_rest_is_refused() {
    let app = spawn_app_with(Engine::Sqlite, |config| config.max_connections = 4).await;
    let key = app.api_key.clone();
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut stream = connect(app.addr).await;
        stream.write_all(kept_alive("/health/live", None).as_bytes()).await.unwrap();
        assert_eq!(read_answer(&mut stream).await.status, 200);
        held.push(stream);
    }

    let mut probes = Vec::new();
    for path in ["/health/live", "/health/ready", "/new/v2.0/health/ready", "/v2.0/health/live"] {
        let answer = app.raw("GET", path, &[], b"").await;
        probes.push((path, answer.status, answer.json()["status"].clone()));
    }
    assert_eq!(
        probes,
        [
            ("/health/live", 200, json!("ok")),
            ("/health/ready", 200, json!("ready")),
            ("/new/v2.0/health/ready", 200, json!("ready")),
            ("/v2.0/health/live", 200, json!("ok")),
        ]
    );
    let refused = app.raw("GET", "/new/v2.0/projects", &[("X-API-Key", &key)], b"").await;
    assert_refused(&refused, 503, 503, "as many connections open as it serves");
    assert_eq!(refused.header("retry-after"), Some("1"));
    assert_eq!(refused.json()["instance"], "/new/v2.0/projects");

    // The connections within the limit are served as before, and once one closes its place
    // is free.
    held[0].write_all(kept_alive("/new/v2.0/projects?limit=1", Some(&key)).as_bytes()).await.unwrap();
    let answer = read_answer(&mut held[0]).await;
    assert_eq!((answer.status, answer.json()["total"].as_u64()), (200, Some(0)), "{:?}", answer.json());
    held.pop();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let answer = app.raw("GET", "/new/v2.0/projects", &[("X-API-Key", &key)], b"").await;
        if answer.status == 200 {
            assert_eq!(answer.json()["total"], 0);
            break;
        }
        assert!(Instant::now() < deadline, "no place was freed: {}", answer.status);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn beyond_the_spare_connections_a_connection_is_closed_at_once() {
    let app = spawn_app_with(Engine::Sqlite, |config| config.max_connections = 1).await;
    let mut held = vec![connect(app.addr).await];
    for _ in 0..SPARE_CONNECTIONS {
        held.push(connect(app.addr).await);
    }
    let mut one_more = connect(app.addr).await;
    let started = Instant::now();
    assert!(closed_by_server(&mut one_more, Duration::from_secs(1)).await, "closed at once");
    // Spare connections that send nothing are closed after their short deadline, and probes
    // are answered again.
    for stream in &mut held[1..] {
        assert!(closed_by_server(stream, Duration::from_secs(4)).await, "a silent spare connection was closed");
    }
    assert!(started.elapsed() < Duration::from_secs(4), "{:?}", started.elapsed());
    assert_eq!(app.raw("GET", "/health/live", &[], b"").await.status, 200);
    assert!(!closed_by_server(&mut held[0], Duration::from_millis(200)).await, "the served one stays open");
}
