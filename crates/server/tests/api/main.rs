//! The HTTP API, tested against a real server per test (one test binary).

#![recursion_limit = "256"]

mod admin;
mod apikeys;
mod credentials;
mod errors;
mod health;
mod helpers;
mod ingest;
mod isolation;
mod list;
mod logs;
mod members;
mod oauth;
mod openapi_routes;
mod outage;
mod prefixes;
mod projects;
mod ratelimit;
mod representations;
mod startup;
mod update;
mod users;
