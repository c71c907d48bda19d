//! `GET /metrics`: what this node has done since it started, in Prometheus' text format
//! (version 0.0.4). Counted where it happens: requests and their durations by the request
//! middleware ([`crate::telemetry::finish`]), rows by the handlers and the background worker
//! that write them; the store's own figures are read when the page is asked for.
//!
//! Each node (each [`crate::AppState`]) has its own [`Metrics`]: nothing is global, so that two
//! servers in one process (as the tests run them) count apart.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Instant;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};

use crate::state::AppState;

/// The upper bounds of the request duration buckets, in seconds.
const BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

/// What is counted. Locks are held for an addition only, and a request allocates nothing once
/// its route, method and status have been seen.
#[derive(Debug)]
pub struct Metrics {
    started: Instant,
    /// Requests by route: how many by method and status, and their durations.
    routes: Mutex<HashMap<String, RouteStats>>,
    /// Rows by collection and what became of them (`inserted`, `duplicate`, `dropped`,
    /// `updated`, `deleted`).
    rows: Mutex<BTreeMap<(String, &'static str), u64>>,
    /// Steps of the background work, by work (`erasure`, `retention`) and step.
    background: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    /// Erasure tasks running on this node now.
    tasks_running: std::sync::atomic::AtomicI64,
}

#[derive(Debug, Default, Clone)]
struct RouteStats {
    /// Method, status and how many.
    answered: Vec<(String, u16, u64)>,
    durations: Histogram,
}

#[derive(Debug, Default, Clone)]
struct Histogram {
    /// How many fell at or below each bound of [`BUCKETS`] (not cumulative).
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            started: Instant::now(),
            routes: Mutex::default(),
            rows: Mutex::default(),
            background: Mutex::default(),
            tasks_running: std::sync::atomic::AtomicI64::new(0),
        }
    }
}

impl Metrics {
    /// One request answered.
    pub fn request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let Ok(mut routes) = self.routes.lock() else { return };
        let stats = match routes.get_mut(route) {
            Some(stats) => stats,
            None => routes.entry(route.to_owned()).or_default(),
        };
        match stats.answered.iter_mut().find(|(m, s, _)| *s == status && m == method) {
            Some((_, _, n)) => *n += 1,
            None => stats.answered.push((method.to_owned(), status, 1)),
        }
        let histogram = &mut stats.durations;
        if let Some(bucket) = BUCKETS.iter().position(|bound| seconds <= *bound) {
            histogram.counts[bucket] += 1;
        }
        histogram.sum += seconds;
        histogram.count += 1;
    }

    /// `n` rows of `collection` that had the `outcome` named.
    pub fn rows(&self, collection: &str, outcome: &'static str, n: u64) {
        if n == 0 {
            return;
        }
        if let Ok(mut rows) = self.rows.lock() {
            *rows.entry((collection.to_owned(), outcome)).or_default() += n;
        }
    }

    /// One step of background work: `work` is `erasure` or `retention`; `step` is `batch` (one
    /// batch deleted), `pass` (a retention pass done), `task_started`, `task_done` or
    /// `task_failed`.
    pub fn background(&self, work: &'static str, step: &'static str) {
        if let Ok(mut background) = self.background.lock() {
            *background.entry((work, step)).or_default() += 1;
        }
        let change = match step {
            "task_started" => 1,
            "task_done" | "task_failed" | "task_paused" => -1,
            _ => 0,
        };
        self.tasks_running.fetch_add(change, std::sync::atomic::Ordering::Relaxed);
    }

    /// The page, with the store's figures given.
    pub fn render(&self, store: &parley_store::Telemetry) -> String {
        let mut out = String::new();
        let mut family = |name: &str, kind: &str, help: &str| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        };
        family("parley_uptime_seconds", "gauge", "Seconds since this node started.");
        let _ = writeln!(out, "parley_uptime_seconds {:.3}", self.started.elapsed().as_secs_f64());
        // In a stable order: by route, then method and status.
        let routes: BTreeMap<String, RouteStats> =
            self.routes.lock().map(|r| r.iter().map(|(k, v)| (k.clone(), v.clone())).collect()).unwrap_or_default();
        let requests: BTreeMap<(String, String, u16), u64> = routes
            .iter()
            .flat_map(|(route, stats)| {
                stats.answered.iter().map(move |(method, status, n)| ((method.clone(), route.clone(), *status), *n))
            })
            .collect();
        render_requests(&mut out, &requests);
        let durations: BTreeMap<String, Histogram> =
            routes.into_iter().map(|(route, stats)| (route, stats.durations)).collect();
        render_durations(&mut out, &durations);
        let _ = writeln!(
            out,
            "# HELP parley_rows_total Rows written, by collection and what became of them.\n# TYPE parley_rows_total counter"
        );
        for ((collection, outcome), n) in self.rows.lock().map(|r| r.clone()).unwrap_or_default() {
            let _ =
                writeln!(out, "parley_rows_total{{collection=\"{}\",outcome=\"{outcome}\"}} {n}", label(&collection));
        }
        let _ = writeln!(
            out,
            "# HELP parley_background_steps_total Steps of the background work: batches deleted, retention passes, erasure tasks started and ended.\n\
             # TYPE parley_background_steps_total counter"
        );
        for ((work, step), n) in self.background.lock().map(|b| b.clone()).unwrap_or_default() {
            let _ = writeln!(out, "parley_background_steps_total{{work=\"{work}\",step=\"{step}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "# HELP parley_background_tasks_running Erasure tasks this node is running now.\n\
             # TYPE parley_background_tasks_running gauge\nparley_background_tasks_running {}",
            self.tasks_running.load(std::sync::atomic::Ordering::Relaxed).max(0)
        );
        render_store(&mut out, store);
        out
    }
}

fn render_requests(out: &mut String, requests: &BTreeMap<(String, String, u16), u64>) {
    let _ = writeln!(
        out,
        "# HELP parley_http_requests_total HTTP requests answered, by method, route and status.\n\
         # TYPE parley_http_requests_total counter"
    );
    for ((method, route, status), n) in requests {
        let _ = writeln!(
            out,
            "parley_http_requests_total{{method=\"{}\",route=\"{}\",status=\"{status}\"}} {n}",
            label(method),
            label(route)
        );
    }
}

fn render_durations(out: &mut String, durations: &BTreeMap<String, Histogram>) {
    let _ = writeln!(
        out,
        "# HELP parley_http_request_duration_seconds How long answering took, by route.\n\
         # TYPE parley_http_request_duration_seconds histogram"
    );
    for (route, histogram) in durations {
        let route = label(route);
        let mut below = 0;
        for (bound, n) in BUCKETS.iter().zip(histogram.counts) {
            below += n;
            let _ = writeln!(
                out,
                "parley_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {below}"
            );
        }
        let _ = writeln!(
            out,
            "parley_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}\n\
             parley_http_request_duration_seconds_sum{{route=\"{route}\"}} {}\n\
             parley_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
            histogram.count, histogram.sum, histogram.count
        );
    }
}

fn render_store(out: &mut String, store: &parley_store::Telemetry) {
    if let Some(writes) = store.write_groups {
        let _ = writeln!(
            out,
            "# HELP parley_store_write_groups_total Transactions the embedded store's writer committed (one log sync each).\n\
             # TYPE parley_store_write_groups_total counter\nparley_store_write_groups_total {}\n\
             # HELP parley_store_writes_total Writes committed in those transactions.\n\
             # TYPE parley_store_writes_total counter\nparley_store_writes_total {}",
            writes.groups, writes.writes
        );
        let _ = writeln!(
            out,
            "# HELP parley_store_commit_duration_seconds How long the embedded store's transactions took, from BEGIN to a durable COMMIT.\n\
             # TYPE parley_store_commit_duration_seconds histogram"
        );
        let mut cumulative = 0;
        for (bound, n) in parley_store::sqlite::COMMIT_BUCKETS.iter().zip(writes.commit_buckets) {
            cumulative += n;
            let _ = writeln!(out, "parley_store_commit_duration_seconds_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        let _ = writeln!(
            out,
            "parley_store_commit_duration_seconds_bucket{{le=\"+Inf\"}} {}\n\
             parley_store_commit_duration_seconds_sum {:.6}\nparley_store_commit_duration_seconds_count {}",
            writes.groups,
            writes.commit_micros as f64 / 1e6,
            writes.groups
        );
    }
    if let Some(cache) = store.cache {
        let _ = writeln!(
            out,
            "# HELP parley_cache_lookups_total Lookups of the node's access cache, by kind and whether memory answered.\n\
             # TYPE parley_cache_lookups_total counter\n\
             parley_cache_lookups_total{{kind=\"api_key\",result=\"hit\"}} {}\n\
             parley_cache_lookups_total{{kind=\"api_key\",result=\"miss\"}} {}\n\
             parley_cache_lookups_total{{kind=\"project\",result=\"hit\"}} {}\n\
             parley_cache_lookups_total{{kind=\"project\",result=\"miss\"}} {}",
            cache.caller_hits, cache.caller_misses, cache.project_hits, cache.project_misses
        );
    }
    if let Some(pool) = store.pool {
        let _ = writeln!(
            out,
            "# HELP parley_store_pool_connections PostgreSQL connections of this node, by state.\n\
             # TYPE parley_store_pool_connections gauge\n\
             parley_store_pool_connections{{state=\"in_use\"}} {}\n\
             parley_store_pool_connections{{state=\"idle\"}} {}\n\
             # HELP parley_store_pool_size_max The most connections the pool opens.\n\
             # TYPE parley_store_pool_size_max gauge\nparley_store_pool_size_max {}",
            pool.size - pool.available,
            pool.available,
            pool.max_size
        );
    }
}

/// A label value as the format escapes it.
fn label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// `GET /metrics`.
pub async fn serve(State(state): State<AppState>) -> Response {
    let page = state.metrics.render(&state.store.telemetry());
    ([(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], page).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_count_up_and_labels_are_escaped() {
        let metrics = Metrics::default();
        metrics.request("GET", "/a\"b", 200, 0.003);
        metrics.request("GET", "/a\"b", 200, 20.0);
        let page = metrics.render(&parley_store::Telemetry::default());
        assert!(page.contains("route=\"/a\\\"b\",le=\"0.0025\"} 0\n"), "{page}");
        assert!(page.contains("route=\"/a\\\"b\",le=\"0.005\"} 1\n"), "{page}");
        assert!(page.contains("route=\"/a\\\"b\",le=\"10\"} 1\n"), "{page}");
        assert!(page.contains("route=\"/a\\\"b\",le=\"+Inf\"} 2\n"), "{page}");
    }
}
