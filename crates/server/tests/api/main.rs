//! The HTTP API, tested against a real server per test (one test binary): every resource, the
//! data lifecycle (pending updates, erasure, retention, masking) and the OData feed. The crash
//! tests, which run the `parley` binary itself, are `tests/crash.rs`.

#![recursion_limit = "256"]

mod admin;
mod apikeys;
mod backup;
mod compression;
mod connections;
mod conversations;
mod credentials;
mod dashboard;
mod disk_full;
mod duplicate_keys;
mod erasure;
mod errors;
mod escalations;
mod goal_events;
mod goals;
mod hardening;
mod health;
mod helpers;
mod ingest;
mod insights;
mod isolation;
mod list;
mod logs;
mod members;
mod metrics;
mod moving;
mod oauth;
mod odata;
mod openapi_conformance;
mod openapi_routes;
mod outage;
mod pending;
mod prefixes;
mod projects;
mod protection;
mod ratelimit;
mod readme;
mod representations;
mod retention;
mod schemathesis;
mod startup;
mod steps;
mod update;
mod users;
