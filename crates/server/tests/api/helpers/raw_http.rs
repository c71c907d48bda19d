//! A hand-written HTTP/1.1 client, for requests a client library would not send as written.

use serde_json::Value as Json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::TestApp;

impl TestApp {
    /// Sends a hand-written request over a fresh connection, exactly as given, so that tests can
    /// control header spelling and the absence of headers a client library adds on its own.
    pub async fn raw(&self, method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> RawResponse {
        let mut request = format!("{method} {target} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n", self.addr);
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        let mut stream = tokio::net::TcpStream::connect(self.addr).await.expect("a connection");
        stream.write_all(request.as_bytes()).await.expect("the request is sent");
        stream.write_all(body).await.expect("the body is sent");
        let mut bytes = Vec::new();
        stream.read_to_end(&mut bytes).await.expect("the answer is read");
        RawResponse::parse(&bytes)
    }
}

/// Sends `bytes` over a fresh connection to `addr` and reads everything the server sends
/// until it closes the connection: for requests that are not quite HTTP.
pub async fn send_bytes(addr: std::net::SocketAddr, bytes: &[u8]) -> RawResponse {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("a connection");
    stream.write_all(bytes).await.expect("the request is sent");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.expect("the answer is read");
    RawResponse::parse(&answer)
}

/// An answer read from a raw connection.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn parse(bytes: &[u8]) -> RawResponse {
        let split = bytes.windows(4).position(|w| w == b"\r\n\r\n").expect("a header block");
        let head = std::str::from_utf8(&bytes[..split]).expect("UTF-8 headers");
        let mut lines = head.split("\r\n");
        let status_line = lines.next().expect("a status line");
        let status = status_line.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("a status code");
        let headers: Vec<(String, String)> = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
            .collect();
        let rest = &bytes[split + 4..];
        let chunked = headers.iter().any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
        let body = if chunked { dechunk(rest) } else { rest.to_vec() };
        RawResponse { status, headers, body }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Json {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

fn dechunk(mut bytes: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let line_end = bytes.windows(2).position(|w| w == b"\r\n").expect("a chunk size line");
        let size_text = std::str::from_utf8(&bytes[..line_end]).expect("a chunk size");
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or_default().trim(), 16).expect("hex size");
        bytes = &bytes[line_end + 2..];
        if size == 0 {
            return body;
        }
        body.extend_from_slice(&bytes[..size]);
        bytes = &bytes[size + 2..];
    }
}
