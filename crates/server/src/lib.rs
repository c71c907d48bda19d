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
pub mod extract;
pub mod ingest;
pub mod json;
pub mod logsink;
pub mod metrics;
pub mod negotiate;
pub mod openapi;
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
