//! The load generator: a closed loop of workers, each sending its next request as soon as the
//! last one is answered, with latencies in an HDR histogram. The same loop drives every target
//! (parley, the empty HTTP handler, the peer, and the raw engine without HTTP), so that their
//! figures can be compared.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http::{HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::net::TcpStream;

use crate::Result;

/// How one call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The answer the workload expects.
    Ok,
    /// Another status.
    Unexpected(u16),
    /// No answer: the connection failed.
    Failed,
}

/// One worker of the closed loop: it owns its connection (or its handle on the engine).
pub trait Worker: Send + 'static {
    fn call(&mut self) -> impl Future<Output = Outcome> + Send;
}

/// Figures of one closed-loop run.
#[derive(Debug, Clone, Serialize)]
pub struct LoadFigures {
    pub concurrency: usize,
    pub seconds: f64,
    /// Calls answered as expected.
    pub ok: u64,
    /// Calls answered otherwise, by status (`0` for a failed connection).
    pub errors: BTreeMap<u16, u64>,
    pub per_second: f64,
    pub latency_ms: Latency,
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    pub p50: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
}

impl Latency {
    pub fn of(histogram: &Histogram<u64>) -> Latency {
        let ms = |micros: u64| micros as f64 / 1000.0;
        Latency {
            p50: ms(histogram.value_at_quantile(0.50)),
            p99: ms(histogram.value_at_quantile(0.99)),
            p999: ms(histogram.value_at_quantile(0.999)),
            max: ms(histogram.max()),
            mean: histogram.mean() / 1000.0,
        }
    }
}

/// A histogram of microseconds from 1 µs to 60 s with 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).unwrap_or_else(|_| unreachable!("the bounds are valid"))
}

/// Runs `workers` in a closed loop: `warmup` unrecorded, then `duration` recorded. Every worker
/// stops at the end of the recorded time; calls in flight then are not counted.
pub async fn closed_loop<W: Worker>(workers: Vec<W>, warmup: Duration, duration: Duration) -> LoadFigures {
    let concurrency = workers.len();
    let record_from = Instant::now() + warmup;
    let end = record_from + duration;
    let tasks: Vec<_> = workers
        .into_iter()
        .map(|mut worker| {
            tokio::spawn(async move {
                let mut latencies = histogram();
                let mut errors: BTreeMap<u16, u64> = BTreeMap::new();
                let mut ok = 0u64;
                loop {
                    let began = Instant::now();
                    if began >= end {
                        break;
                    }
                    let outcome = worker.call().await;
                    let done = Instant::now();
                    if began < record_from || done > end {
                        continue;
                    }
                    match outcome {
                        Outcome::Ok => {
                            ok += 1;
                            let _ = latencies.record((done - began).as_micros().max(1) as u64);
                        }
                        Outcome::Unexpected(status) => *errors.entry(status).or_default() += 1,
                        Outcome::Failed => {
                            *errors.entry(0).or_default() += 1;
                            // Do not spin on a refused connection.
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    }
                }
                (latencies, errors, ok)
            })
        })
        .collect();
    let mut latencies = histogram();
    let mut errors: BTreeMap<u16, u64> = BTreeMap::new();
    let mut ok = 0;
    for task in tasks {
        if let Ok((h, e, n)) = task.await {
            let _ = latencies.add(&h);
            for (status, count) in e {
                *errors.entry(status).or_default() += count;
            }
            ok += n;
        }
    }
    let seconds = duration.as_secs_f64();
    LoadFigures {
        concurrency,
        seconds,
        ok,
        errors,
        per_second: ok as f64 / seconds,
        latency_ms: Latency::of(&latencies),
    }
}

/// An HTTP/1.1 keep-alive connection of one worker, reopened after a failure.
pub struct Connection {
    addr: SocketAddr,
    host: HeaderValue,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Connection {
    pub fn new(addr: SocketAddr) -> Connection {
        let host = HeaderValue::from_str(&addr.to_string()).unwrap_or_else(|_| HeaderValue::from_static("127.0.0.1"));
        Connection { addr, host, sender: None }
    }

    /// The address it connects to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    async fn open(&mut self) -> Result<&mut SendRequest<Full<Bytes>>> {
        if self.sender.as_ref().is_none_or(|s| s.is_closed()) {
            let stream = TcpStream::connect(self.addr).await?;
            stream.set_nodelay(true)?;
            let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(connection);
            self.sender = Some(sender);
        }
        Ok(self.sender.as_mut().unwrap_or_else(|| unreachable!("opened above")))
    }

    /// Sends a request and reads the whole answer.
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(&'static str, HeaderValue)],
        body: Bytes,
    ) -> Result<(StatusCode, Bytes)> {
        let host = self.host.clone();
        let sender = self.open().await?;
        sender.ready().await?;
        let mut request = Request::builder().method(method).uri(path).header(http::header::HOST, host);
        for (name, value) in headers {
            request = request.header(*name, value.clone());
        }
        let request = request.body(Full::new(body))?;
        let answer = match sender.send_request(request).await {
            Ok(answer) => answer,
            Err(e) => {
                self.sender = None;
                return Err(e.into());
            }
        };
        let status = answer.status();
        let body = answer.into_body().collect().await.inspect_err(|_| self.sender = None)?;
        Ok((status, body.to_bytes()))
    }
}

/// A worker that sends requests made by `next` and expects `expect` (or any 2xx when `None`).
pub struct HttpWorker<F> {
    pub connection: Connection,
    pub method: Method,
    pub headers: Vec<(&'static str, HeaderValue)>,
    pub expect: Option<StatusCode>,
    /// The path and body of the next request.
    pub next: F,
}

impl<F: FnMut() -> (String, Bytes) + Send + 'static> Worker for HttpWorker<F> {
    async fn call(&mut self) -> Outcome {
        let (path, body) = (self.next)();
        match self.connection.send(self.method.clone(), &path, &self.headers, body).await {
            Ok((status, _)) if self.expect.map_or(status.is_success(), |e| status == e) => Outcome::Ok,
            Ok((status, _)) => Outcome::Unexpected(status.as_u16()),
            Err(_) => Outcome::Failed,
        }
    }
}

/// Latencies of a fixed number of sequential calls of one query.
#[derive(Debug, Clone, Serialize)]
pub struct QueryFigures {
    pub name: String,
    pub request: String,
    pub calls: u64,
    pub errors: u64,
    pub latency_ms: Latency,
}

/// Sends `path` (a GET) `calls` times in a row and records each latency; `next_path` may give
/// the following request from the answer (for cursor paging).
pub async fn run_query(
    connection: &mut Connection,
    name: &str,
    path: &str,
    headers: &[(&'static str, HeaderValue)],
    calls: u64,
    next_path: impl Fn(&Bytes) -> Option<String>,
) -> QueryFigures {
    let mut latencies = histogram();
    let mut errors = 0;
    let mut current = path.to_owned();
    for _ in 0..calls {
        let began = Instant::now();
        match connection.send(Method::GET, &current, headers, Bytes::new()).await {
            Ok((status, body)) if status.is_success() => {
                let _ = latencies.record(began.elapsed().as_micros().max(1) as u64);
                current = next_path(&body).unwrap_or_else(|| path.to_owned());
            }
            _ => errors += 1,
        }
    }
    QueryFigures { name: name.to_owned(), request: path.to_owned(), calls, errors, latency_ms: Latency::of(&latencies) }
}
