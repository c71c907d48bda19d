//! parley's HTTP service: routes per resource, the credential extractor, content negotiation,
//! problem bodies, configuration and telemetry. Requests flow one way: extract and parse (typed
//! values only past the extractors), authorise, apply the domain, store, then represent in the
//! format chosen once by negotiation.

pub mod admin;
pub mod app;
pub mod auth;
pub mod background;
pub mod bootstrap;
pub mod chart;
pub mod config;
pub mod connections;
pub mod dashboard;
pub mod extract;
pub mod ingest;
pub mod json;
pub mod logsink;
pub mod metrics;
pub mod negotiate;
pub mod openapi;
pub mod ops;
pub mod password;
pub mod problem;
pub mod query_rules;
pub mod ratelimit;
pub mod reference;
pub mod represent;
pub mod routes;
pub mod service;
pub mod state;
pub mod telemetry;
pub mod tokens;

pub use app::{Running, StartError, start};
pub use config::Config;

/// SIGINT (Ctrl-C) or SIGTERM. After it, `parley serve` stops as [`Running::stop`] says (stop
/// accepting, finish requests in flight, stop background work between two transactions, flush the
/// store, exit 0), and a long operator command stops between two batches.
pub async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(_) => return interrupt.await.unwrap_or_default(),
        };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    interrupt.await.unwrap_or_default();
    tracing::info!("shutting down: finishing requests in flight");
}
