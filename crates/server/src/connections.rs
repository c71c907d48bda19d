//! The connections: the accept loop in front of the router. It bounds how many connections are
//! open and how long one may take to send a request's head (which also bounds how long a
//! kept-alive connection sits idle), answers beyond the bound without doing any work, and gives
//! the HTTP layer's own refusals (a malformed request, too many headers, too long an address)
//! the problem body and trace id every other failure has (docs/operations.md, "Connections").

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::StatusCode;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};

use crate::problem::{ApiError, ErrorCode, problem_body};

/// Connections read beyond `max_connections`, one request each with a short deadline: a health
/// probe is answered as usual, anything else with 503. Beyond these, a connection is closed as
/// soon as it is accepted.
pub const SPARE_CONNECTIONS: usize = 64;
/// How long a spare connection has to send its request's head.
const SPARE_HEADER_TIMEOUT: Duration = Duration::from_secs(2);
/// Open files kept for everything but client connections: the database and its journal, the
/// PostgreSQL pool, logs, the listener.
const RESERVED_FILES: u64 = 256;

/// What the loop enforces.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections served at once.
    pub max_connections: usize,
    /// How long a connection has to send the head of its next request, counted from when it
    /// opens or from the end of its previous answer.
    pub header_timeout: Duration,
}

/// The two applications a connection may be served by.
pub struct Routers {
    /// Everything, for connections within the limit.
    pub full: Router,
    /// Health probes and a 503 for the rest, for spare connections.
    pub at_capacity: Router,
}

/// Accepts and serves connections until `stop` turns true, then lets each connection finish
/// the request it is serving and returns once all are closed.
pub async fn serve(
    listener: TcpListener,
    routers: Routers,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
) -> io::Result<()> {
    let open = Arc::new(Semaphore::new(limits.max_connections));
    let spare = Arc::new(Semaphore::new(SPARE_CONNECTIONS));
    let mut within = http1::Builder::new();
    within.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout);
    let mut beyond = http1::Builder::new();
    beyond.timer(TokioTimer::new()).header_read_timeout(SPARE_HEADER_TIMEOUT).keep_alive(false);
    let (closing, closing_seen) = watch::channel(false);
    // Every connection task holds a sender; the receiver sees the end once all are dropped.
    let (alive, mut all_closed) = mpsc::channel::<()>(1);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) if per_connection(&error) => continue,
                Err(error) => {
                    // Out of file handles, most likely: wait for some to close rather than spin.
                    tracing::warn!(%error, "cannot accept a connection; trying again in a second");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                        _ = turned_on(&mut stop) => break,
                    }
                }
            },
            _ = turned_on(&mut stop) => break,
        };
        let (router, http, permit) = match Arc::clone(&open).try_acquire_owned() {
            Ok(permit) => (routers.full.clone(), within.clone(), permit),
            Err(_) => match Arc::clone(&spare).try_acquire_owned() {
                Ok(permit) => (routers.at_capacity.clone(), beyond.clone(), permit),
                Err(_) => {
                    tracing::warn!(%peer, "connection closed at once: every connection and spare is in use");
                    continue;
                }
            },
        };
        let connection = Connection { stream, peer, router, http, closing: closing_seen.clone() };
        tokio::spawn(connection.serve(permit, alive.clone()));
    }
    drop(listener);
    let _ = closing.send(true);
    drop(alive);
    let _ = all_closed.recv().await;
    Ok(())
}

/// Resolves once `flag` is true (or its sender is gone).
async fn turned_on(flag: &mut watch::Receiver<bool>) {
    let _ = flag.wait_for(|on| *on).await;
}

/// Accept errors that concern one connection only, which the loop skips.
fn per_connection(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionRefused
    )
}

/// One accepted connection and what serves it.
struct Connection {
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    http: http1::Builder,
    closing: watch::Receiver<bool>,
}

impl Connection {
    async fn serve(self, _permit: OwnedSemaphorePermit, _alive: mpsc::Sender<()>) {
        let Connection { stream, peer, router, http, mut closing } = self;
        let _ = stream.set_nodelay(true);
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let mut router = router.clone();
            let mut request = request.map(Body::new);
            request.extensions_mut().insert(ConnectInfo(peer));
            async move { tower_service::Service::call(&mut router, request).await }
        });
        let connection = http.serve_connection(TokioIo::new(Refusals::new(stream)), service);
        tokio::pin!(connection);
        let ended = tokio::select! {
            ended = connection.as_mut() => ended,
            _ = turned_on(&mut closing) => {
                connection.as_mut().graceful_shutdown();
                connection.await
            }
        };
        if let Err(error) = ended {
            tracing::debug!(%peer, %error, "connection ended");
        }
    }
}

/// How many connections the open-file limit leaves room for, after raising the limit as far as
/// the system allows; `configured` when it fits.
pub fn connection_budget(configured: usize) -> usize {
    let Some(files) = raise_open_file_limit() else { return configured };
    let room = room_for_connections(files);
    if configured > room {
        tracing::warn!(
            max_connections = configured,
            open_file_limit = files,
            "max_connections is above what the open-file limit leaves room for; serving at most {room}"
        );
        return room;
    }
    configured
}

/// The connections `files` open files leave room for, after what parley keeps for itself and
/// the spare connections.
fn room_for_connections(files: u64) -> usize {
    let room = files.saturating_sub(RESERVED_FILES + SPARE_CONNECTIONS as u64).max(1);
    usize::try_from(room).unwrap_or(usize::MAX)
}

/// Raises this process's soft limit on open files to its hard limit and answers the limit in
/// force; `None` where it cannot be read.
#[cfg(unix)]
fn raise_open_file_limit() -> Option<u64> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed to them.
    #[allow(unsafe_code, reason = "std has no way to read or raise the open-file limit")]
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return None;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit { rlim_cur: limit.rlim_max, rlim_max: limit.rlim_max };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    Some(limit.rlim_cur)
}

#[cfg(not(unix))]
fn raise_open_file_limit() -> Option<u64> {
    None
}

/// A client's socket, through which the HTTP layer's own refusals leave with a problem body.
///
/// The HTTP layer answers a request it cannot parse by itself, before any route sees it, with a
/// bare head (status, `connection`, `content-length: 0` and `date`, nothing else) and then closes
/// the connection. Every answer of the application carries at least `content-type` and
/// `x-trace-id`, so a head of that shape can only be such a refusal: this writes the problem in
/// its place.
struct Refusals {
    stream: TcpStream,
    /// A problem answer being written, and how much of it is out.
    replacement: Option<(Vec<u8>, usize)>,
}

impl Refusals {
    fn new(stream: TcpStream) -> Self {
        Refusals { stream, replacement: None }
    }

    /// Writes what is left of a replacement.
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((bytes, written)) = &mut self.replacement {
            if *written == bytes.len() {
                self.replacement = None;
                break;
            }
            let n = ready!(Pin::new(&mut self.stream).poll_write(cx, &bytes[*written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *written += n;
        }
        Poll::Ready(Ok(()))
    }

    /// Takes `head` in place of the bare refusal it is, if it is one: answers whether it did.
    fn replace(&mut self, cx: &mut Context<'_>, head: &[u8]) -> io::Result<bool> {
        let Some(status) = bare_refusal(head) else { return Ok(false) };
        self.replacement = Some((problem_answer(status, head), 0));
        // What does not go out now goes out on the flush that follows every write.
        if let Poll::Ready(Err(error)) = self.drain(cx) {
            return Err(error);
        }
        Ok(true)
    }
}

impl AsyncRead for Refusals {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Refusals {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        ready!(self.drain(cx))?;
        if self.replace(cx, buf)? {
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        ready!(self.drain(cx))?;
        let mut filled = bufs.iter().filter(|buf| !buf.is_empty());
        if let (Some(only), None) = (filled.next(), filled.next())
            && self.replace(cx, only)?
        {
            return Poll::Ready(Ok(only.len()));
        }
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.drain(cx))?;
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.drain(cx))?;
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// The status of `head` when it is a whole bare refusal of the HTTP layer (see [`Refusals`]).
fn bare_refusal(head: &[u8]) -> Option<StatusCode> {
    // Most writes are answers that succeeded: out after one byte (`HTTP/1.1 2…`).
    if !matches!(head.get(9), Some(b'4' | b'5')) {
        return None;
    }
    let text = std::str::from_utf8(head).ok()?.strip_suffix("\r\n\r\n")?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next()?;
    let rest = status_line.strip_prefix("HTTP/1.1 ").or_else(|| status_line.strip_prefix("HTTP/1.0 "))?;
    let status = StatusCode::from_bytes(rest.get(..3)?.as_bytes()).ok()?;
    if !(status.is_client_error() || status.is_server_error()) {
        return None;
    }
    let bare = lines.all(|line| match line.split_once(':') {
        Some((name, value)) => match name.to_ascii_lowercase().as_str() {
            "content-length" => value.trim() == "0",
            "connection" | "date" => true,
            _ => false,
        },
        None => false,
    });
    bare.then_some(status)
}

/// The answer written instead of the bare refusal `head` with `status`: the catalogue's code
/// for it, in the problem body, with a trace id of its own.
fn problem_answer(status: StatusCode, head: &[u8]) -> Vec<u8> {
    let (code, detail) = match status {
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => (
            ErrorCode::HeadersTooLarge,
            "The request has more header fields (at most 100) or more header bytes than the server reads; nothing was done.",
        ),
        StatusCode::URI_TOO_LONG => {
            (ErrorCode::BadRequest, "The request's address is too long (at most 65 534 bytes); nothing was done.")
        }
        _ => (
            ErrorCode::BadRequest,
            "The request is not well-formed HTTP/1.1: its request line, a header or its framing (Content-Length, \
             Transfer-Encoding) cannot be read; nothing was done.",
        ),
    };
    let trace_id = crate::telemetry::new_trace_id();
    let body = serde_json::to_vec(&problem_body(&ApiError::new(code, detail), "", &trace_id)).unwrap_or_default();
    let status = code.status();
    tracing::info!(status = status.as_u16(), refused = %detail, "traceId" = %trace_id, "request refused before routing");
    let date = std::str::from_utf8(head)
        .ok()
        .and_then(|text| text.split("\r\n").find(|line| line.to_ascii_lowercase().starts_with("date:")))
        .map(|line| format!("{line}\r\n"))
        .unwrap_or_default();
    let mut answer = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/problem+json\r\nx-trace-id: {trace_id}\r\n\
         content-length: {}\r\nconnection: close\r\n{date}\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("Error"),
        body.len(),
    )
    .into_bytes();
    answer.extend_from_slice(&body);
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_bare_head_is_a_refusal() {
        let bare = b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\ndate: Tue, 01 Dec 2026 10:28:03 GMT\r\n\r\n";
        assert_eq!(bare_refusal(bare), Some(StatusCode::BAD_REQUEST));
        let ours = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/problem+json\r\nx-trace-id: api--1\r\ncontent-length: 0\r\n\r\n";
        assert_eq!(bare_refusal(ours), None);
        let success = b"HTTP/1.1 204 No Content\r\ndate: Tue, 01 Dec 2026 10:28:03 GMT\r\n\r\n";
        assert_eq!(bare_refusal(success), None);
        let with_body = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 2\r\n\r\n";
        assert_eq!(bare_refusal(with_body), None);
        let head_and_more = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\nHTTP/1.1 200 OK\r\n\r\n";
        assert_eq!(bare_refusal(head_and_more), None);
    }

    #[test]
    fn the_open_file_limit_leaves_room_for_fewer_connections() {
        assert_eq!(room_for_connections(1024), 1024 - 256 - 64);
        assert_eq!(room_for_connections(100), 1, "never none");
        assert_eq!(room_for_connections(1 << 20), (1 << 20) - 320);
    }

    #[test]
    fn a_refusal_becomes_a_problem_of_the_catalogue() {
        let head = b"HTTP/1.1 414 URI Too Long\r\nconnection: close\r\ncontent-length: 0\r\ndate: D\r\n\r\n";
        let answer = String::from_utf8(problem_answer(StatusCode::URI_TOO_LONG, head)).unwrap();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{head}");
        assert!(head.contains("\r\ndate: D"), "{head}");
        assert!(head.contains(&format!("content-length: {}", body.len())), "{head}");
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(body["status"], 400);
        assert!(body["detail"].as_str().unwrap().contains("address is too long"), "{body}");
        assert!(head.contains(body["traceId"].as_str().unwrap()), "{head}");
    }
}
