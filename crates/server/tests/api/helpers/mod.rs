//! The test harness: a real server per test on port 0 with its own fresh database, a client
//! bound to it, fixtures made through the API, and parsers for the bodies the tests inspect
//! (problem bodies, XML, CSV).

mod app;
mod assert;
mod csv;
mod fixtures;
mod python;
mod raw_http;
mod xml;

pub use app::*;
pub use assert::*;
pub use csv::*;
pub use fixtures::*;
pub use parley_store::on_both_engines;
pub use parley_store::testing::Engine;
pub use python::*;
pub use raw_http::*;
pub use xml::*;
