//! The Insights benchmark: a large data set (records with their conversation messages, executed
//! steps and escalations, and so the sessions derived from them) streamed into parley through the
//! API, then every report timed over the last 30 days and over a year, alone and compared with a
//! second project, with the store quiet and again while records keep arriving.
//!
//! The data set is generated as it is sent, so that ten million records need no more memory
//! than a few batches. A loaded store can be kept (`--data-dir`) and timed again without loading.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::Result;
use crate::data::iso_time;
use crate::load::{Connection, QueryFigures, run_query};
use crate::process::{load_average, rss_kb};
use crate::run::{header, parley_binary, start_parley_keyed, target_dir};

/// What `insights` runs.
#[derive(Debug, Clone, clap::Args)]
pub struct InsightsOptions {
    /// Records in the data set.
    #[arg(long, default_value_t = 10_000_000)]
    pub records: u64,
    /// Projects they are spread over, the first ones far larger.
    #[arg(long, default_value_t = 10)]
    pub projects: usize,
    /// Days of history, ending at 2026-03-01.
    #[arg(long, default_value_t = 365)]
    pub days: i64,
    /// Seed of the generator.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Calls of each report in each variant.
    #[arg(long, default_value_t = 20)]
    pub calls: u64,
    /// Records a second ingested beside the reports in the last variant (0 leaves it out).
    #[arg(long, default_value_t = 2000)]
    pub beside_rate: u64,
    /// Where the embedded store lives; a directory that holds a loaded store (from an earlier
    /// run with the same options) is timed again without loading. By default a scratch
    /// directory, removed afterwards.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// The database parley runs on (an empty PostgreSQL database, or one an earlier run loaded
    /// with `--data-dir` kept); by default the embedded store.
    #[arg(long)]
    pub database: Option<String>,
    /// The `parley` binary; by default the release build, rebuilt first when run through cargo.
    #[arg(long)]
    pub parley_bin: Option<PathBuf>,
    /// Where to write the JSON figures; by default target/bench/insights-<time>.json.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// When the data ends: 2026-03-01T00:00:00Z, fixed so that runs are equal.
const END_MS: i64 = 1_772_323_200_000;
const DAY_MS: i64 = 86_400_000;
/// Rows per ingest request.
const BATCH: usize = 5000;

/// What a loaded store remembers, beside it, so that it can be timed again.
#[derive(Debug, Serialize, Deserialize)]
struct Loaded {
    key: String,
    projects: Vec<String>,
    records: u64,
    messages: u64,
    steps: u64,
    escalations: u64,
    load_seconds: f64,
}

/// The figures of a run.
#[derive(Debug, Serialize)]
struct Figures {
    records: u64,
    projects: usize,
    days: i64,
    database: String,
    load: Option<LoadFigures>,
    /// Records of the project timed, in its last 30 days.
    records_in_30_days: Option<u64>,
    variants: Vec<Variant>,
}

#[derive(Debug, Serialize)]
struct LoadFigures {
    records: u64,
    messages: u64,
    steps: u64,
    escalations: u64,
    seconds: f64,
    records_per_second: f64,
    rows_per_second: f64,
    server_rss_mb: f64,
}

#[derive(Debug, Serialize)]
struct Variant {
    name: String,
    queries: Vec<QueryFigures>,
}

/// The reports, with the parameters each needs besides the range.
const REPORTS: [(&str, &str); 24] = [
    ("overview", ""),
    ("sessions", ""),
    ("contacts", ""),
    ("inputs", ""),
    ("activeSessions", ""),
    ("sessionsByChannel", ""),
    ("contactsByLocale", ""),
    ("sessionsByEndpoint", ""),
    ("topIntents", ""),
    ("topSlots", ""),
    ("topGoals", ""),
    ("topMessages", ""),
    ("topExitMessages", ""),
    ("sessionLength", ""),
    ("containmentRate", ""),
    ("handoverRate", ""),
    ("handoversByHour", ""),
    ("ratings", ""),
    ("executionTime", ""),
    ("intentScore", ""),
    ("goals", ""),
    ("liveAgent", ""),
    ("steps", "&startStep=welcome"),
    ("understood", ""),
];

const INTENTS: usize = 60;
const CHANNELS: [&str; 5] = ["webchat", "whatsapp", "voice", "slack", "sms"];
const LOCALES: [&str; 4] = ["en-US", "de-DE", "fr-FR", "es-ES"];
const STEPS: [&str; 8] = ["welcome", "identify", "order", "payment", "address", "handover", "survey", "goodbye"];
const TEXTS: [&str; 8] = [
    "where is my order",
    "I want a refund",
    "change my address",
    "talk to a human",
    "what are your opening hours",
    "thanks",
    "my card was charged twice",
    "hello",
];

/// An index below `n`, the first ones far more often.
fn skewed(rng: &mut impl Rng, n: usize) -> usize {
    let u: f64 = rng.random();
    ((u * u * u) * n as f64) as usize
}

/// The bodies of one session: its records, messages, steps and escalation, as NDJSON lines.
#[derive(Default)]
struct Lines {
    records: Vec<String>,
    messages: Vec<String>,
    steps: Vec<String>,
    escalations: Vec<String>,
}

fn session(rng: &mut impl Rng, o: &InsightsOptions, projects: &[String], n: u64, lines: &mut Lines) -> u64 {
    // Project k gets a share proportional to 1 / (k + 1).
    let weights: f64 = (1..=projects.len()).map(|k| 1.0 / k as f64).sum();
    let mut pick = rng.random::<f64>() * weights;
    let mut p = 0;
    while p + 1 < projects.len() && pick > 1.0 / (p + 1) as f64 {
        pick -= 1.0 / (p + 1) as f64;
        p += 1;
    }
    let project = &projects[p];
    let contacts = (o.records / 20 / projects.len() as u64).max(10) as usize;
    let contact = format!("c{}", skewed(rng, contacts));
    let id = format!("s{n}");
    let channel = CHANNELS[skewed(rng, CHANNELS.len())];
    let locale = LOCALES[skewed(rng, LOCALES.len())];
    let mut at = END_MS - rng.random_range(0..o.days * DAY_MS);
    let inputs = 1 + skewed(rng, 8) as u64;
    let mut step = 0;
    for i in 0..inputs {
        let input = format!("{id}-{i}");
        let intent = skewed(rng, INTENTS);
        let text = TEXTS[skewed(rng, TEXTS.len())];
        let rating = if rng.random_bool(0.05) {
            if rng.random_bool(0.7) { ",\"rating\":1" } else { ",\"rating\":-1" }
        } else {
            ""
        };
        let handover = if rng.random_bool(0.03) { ",\"inHandoverRequest\":true" } else { "" };
        let slots = if rng.random_bool(0.2) { ",\"slots\":{\"date\":\"tomorrow\"}" } else { "" };
        let time = iso_time(at);
        lines.records.push(format!(
            r#"{{"projectId":"{project}","contactId":"{contact}","sessionId":"{id}","inputId":"{input}","timestamp":"{time}","inputText":"{text}","intent":"intent-{intent}","intentScore":{:.3},"channel":"{channel}","localeName":"{locale}","endpointUrlToken":"ep-{channel}","endpointName":"{channel} endpoint","flowName":"Main","executionTime":{},"understood":{}{rating}{handover}{slots}}}"#,
            rng.random::<f64>(),
            rng.random_range(5..500),
            rng.random_bool(0.85),
        ));
        lines.messages.push(format!(
            r#"{{"projectId":"{project}","contactId":"{contact}","sessionId":"{id}","messageId":"u-{input}","inputId":"{input}","type":"input","source":"user","inputText":"{text}","timestamp":"{time}","channel":"{channel}","localeName":"{locale}"}}"#
        ));
        lines.messages.push(format!(
            r#"{{"projectId":"{project}","contactId":"{contact}","sessionId":"{id}","messageId":"b-{input}","outputId":"o-{input}","type":"output","source":"bot","inputText":"Happy to help.","timestamp":"{}","channel":"{channel}"}}"#,
            iso_time(at + 800)
        ));
        if i == 0 || rng.random_bool(0.5) {
            let entity = if i == 0 { STEPS[0] } else { STEPS[1 + skewed(rng, STEPS.len() - 1)] };
            lines.steps.push(format!(
                r#"{{"projectId":"{project}","userId":"{contact}","sessionId":"{id}","executionId":"{input}-x","entityReferenceId":"{entity}","stepLabel":"{entity}","type":"node","timestamp":"{}"}}"#,
                iso_time(at + 100)
            ));
            step += 1;
        }
        at += rng.random_range(5_000..180_000);
    }
    if step > 0 && rng.random_bool(0.04) {
        lines.escalations.push(format!(
            r#"{{"projectId":"{project}","sessionId":"{id}","contactId":"{contact}","escalationId":"e-{id}","status":"resolved","timestamp":"{}","firstResponseAt":"{}","resolvedAt":"{}","labels":["billing"],"channel":"{channel}"}}"#,
            iso_time(at),
            iso_time(at + 40_000),
            iso_time(at + 600_000)
        ));
    }
    inputs
}

/// The NDJSON bodies of the data set, generated as they are sent: each body with its address.
fn generate(o: InsightsOptions, projects: Vec<String>, sender: mpsc::Sender<(&'static str, Bytes, u64)>) {
    let mut rng = StdRng::seed_from_u64(o.seed);
    let mut lines = Lines::default();
    let (mut records, mut n) = (0u64, 0u64);
    let flush = |lines: &mut Lines, all: bool| -> Vec<(&'static str, Bytes, u64)> {
        let mut out = Vec::new();
        for (path, list) in [
            ("/new/v2.0/analytics/records", &mut lines.records),
            ("/new/v2.0/conversations/messages", &mut lines.messages),
            ("/new/v2.0/analytics/steps", &mut lines.steps),
            ("/new/v2.0/analytics/escalations", &mut lines.escalations),
        ] {
            if list.len() >= BATCH || (all && !list.is_empty()) {
                let rows = list.len() as u64;
                out.push((path, Bytes::from(list.join("\n")), rows));
                list.clear();
            }
        }
        out
    };
    while records < o.records {
        records += session(&mut rng, &o, &projects, n, &mut lines);
        n += 1;
        for body in flush(&mut lines, false) {
            if sender.blocking_send(body).is_err() {
                return;
            }
        }
    }
    for body in flush(&mut lines, true) {
        let _ = sender.blocking_send(body);
    }
}

pub async fn insights(o: InsightsOptions) -> Result<()> {
    let target = target_dir()?;
    let bin = parley_binary(o.parley_bin.as_deref(), &target)?;
    let bench_dir = target.join("bench");
    std::fs::create_dir_all(&bench_dir)?;
    let (data_dir, _scratch) = match &o.data_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            (dir.clone(), None)
        }
        None => {
            let scratch = tempfile::Builder::new().prefix("insights-").tempdir_in(&bench_dir)?;
            (scratch.path().to_owned(), Some(scratch))
        }
    };
    let state_file = data_dir.join("bench-insights.json");
    let loaded: Option<Loaded> = std::fs::read(&state_file).ok().and_then(|b| serde_json::from_slice(&b).ok());
    let key = loaded.as_ref().map_or_else(
        || rand::random::<[u8; 32]>().iter().map(|b| format!("{b:02x}")).collect::<String>(),
        |l| l.key.clone(),
    );
    let server = start_parley_keyed(&bin, &data_dir, o.database.as_deref(), &key)?;
    let auth = ("x-api-key", header(&key));
    let mut connection = Connection::new(server.addr);

    let (loaded, load) = match loaded {
        // The generator finishes the session it is in, so a load holds a few records more.
        Some(loaded) if loaded.records >= o.records && loaded.projects.len() == o.projects => {
            eprintln!("bench insights: timing the store loaded earlier in {}", data_dir.display());
            (loaded, None)
        }
        _ => {
            let (loaded, figures) = load_data(&o, &server, &mut connection, &auth, key.clone()).await?;
            std::fs::write(&state_file, serde_json::to_vec_pretty(&loaded)?)?;
            (loaded, Some(figures))
        }
    };

    let projects = &loaded.projects;
    let (p0, p1) = (&projects[0], &projects[projects.len().min(2) - 1]);
    let day = |ms: i64| iso_time(ms)[..10].to_owned();
    let last_30 = format!("from={}&to={}", day(END_MS - 30 * DAY_MS), day(END_MS - DAY_MS));
    let last_year = format!("from={}&to={}", day(END_MS - 365 * DAY_MS), day(END_MS - DAY_MS));
    let headers = [auth.clone(), ("accept", header("application/json"))];
    let count_path = format!("/new/v2.0/insights/inputs?projectId={p0}&{last_30}&timezone=Europe/Berlin&grain=month");
    let records_in_30_days = match connection.send(Method::GET, &count_path, &headers, Bytes::new()).await {
        Ok((StatusCode::OK, body)) => serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .map(|b| b["items"].as_array().into_iter().flatten().filter_map(|i| i["value"].as_u64()).sum()),
        _ => None,
    };
    eprintln!("bench insights: the project timed has {records_in_30_days:?} records in its last 30 days");

    let mut variants = Vec::new();
    let shapes = [
        ("30 days", format!("projectId={p0}&{last_30}")),
        ("30 days, compare", format!("projectId={p0}&projectId={p1}&compare=project&{last_30}")),
        ("1 year", format!("projectId={p0}&{last_year}")),
        ("1 year, compare", format!("projectId={p0}&projectId={p1}&compare=project&{last_year}")),
    ];
    for (name, query) in &shapes {
        variants.push(time_reports(&mut connection, &headers, name, query, o.calls, load_average()).await);
    }
    if o.beside_rate > 0 {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let feeder = tokio::spawn(feed(
            server.addr,
            auth.clone(),
            p0.clone(),
            o.beside_rate,
            Arc::clone(&stop),
            Arc::clone(&sent),
        ));
        let began = Instant::now();
        let name = format!("30 days, beside ingest of {} records/s", o.beside_rate);
        variants.push(time_reports(&mut connection, &headers, &name, &shapes[0].1, o.calls, load_average()).await);
        stop.store(true, Ordering::Relaxed);
        let _ = feeder.await;
        eprintln!(
            "bench insights: {} records ingested beside the reports in {:.0} s",
            sent.load(Ordering::Relaxed),
            began.elapsed().as_secs_f64()
        );
    }
    server.stop();

    let figures = Figures {
        records: loaded.records,
        projects: projects.len(),
        days: o.days,
        database: o.database.clone().map_or_else(|| "sqlite (embedded)".to_owned(), |_| "postgresql".to_owned()),
        load,
        records_in_30_days,
        variants,
    };
    let out = o.out.clone().unwrap_or_else(|| bench_dir.join(format!("insights-{}.json", std::process::id())));
    std::fs::write(&out, serde_json::to_vec_pretty(&figures)?)?;
    println!("{}", table(&figures));
    eprintln!("bench insights: figures in {}", out.display());
    Ok(())
}

async fn time_reports(
    connection: &mut Connection,
    headers: &[(&'static str, HeaderValue)],
    name: &str,
    query: &str,
    calls: u64,
    load: f64,
) -> Variant {
    eprintln!("bench insights: {name} (load average {load:.2})");
    let mut queries = Vec::new();
    for (report, extra) in REPORTS {
        let path = format!("/new/v2.0/insights/{report}?{query}&timezone=Europe/Berlin{extra}");
        queries.push(run_query(connection, report, &path, headers, calls, |_| None).await);
    }
    Variant { name: name.to_owned(), queries }
}

/// Sends new records of `project`, timed in the last 30 days, at `rate` a second until stopped.
async fn feed(
    addr: std::net::SocketAddr,
    auth: (&'static str, HeaderValue),
    project: String,
    rate: u64,
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
) {
    let mut connection = Connection::new(addr);
    let headers = [auth, ("content-type", header("application/x-ndjson"))];
    let batch = (rate / 10).max(1);
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut n = 0u64;
    let mut rng = StdRng::seed_from_u64(7);
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        let lines: Vec<String> = (0..batch)
            .map(|_| {
                n += 1;
                let at = END_MS - rng.random_range(0..30 * DAY_MS);
                format!(
                    r#"{{"projectId":"{project}","contactId":"live-{}","sessionId":"live-{n}","inputId":"live-{}-{n}","timestamp":"{}","intent":"intent-{}","channel":"webchat"}}"#,
                    n % 5000,
                    std::process::id(),
                    iso_time(at),
                    n % 40
                )
            })
            .collect();
        if let Ok((status, _)) =
            connection.send(Method::POST, "/new/v2.0/analytics/records", &headers, Bytes::from(lines.join("\n"))).await
            && status.is_success()
        {
            sent.fetch_add(batch, Ordering::Relaxed);
        }
    }
}

/// Creates the projects and streams the data set in through four connections.
async fn load_data(
    o: &InsightsOptions,
    server: &crate::process::Server,
    connection: &mut Connection,
    auth: &(&'static str, HeaderValue),
    key: String,
) -> Result<(Loaded, LoadFigures)> {
    let headers = [auth.clone(), ("content-type", header("application/json")), ("accept", header("application/json"))];
    let mut projects = Vec::new();
    for k in 0..o.projects {
        let body = Bytes::from(format!(r#"{{"name":"Bot {}"}}"#, k + 1));
        let (status, answer) = connection.send(Method::POST, "/new/v2.0/projects", &headers, body).await?;
        let answer: serde_json::Value = serde_json::from_slice(&answer)?;
        let id = answer["_id"].as_str().ok_or_else(|| format!("creating a project answered {status}: {answer}"))?;
        projects.push(id.to_owned());
    }
    let (sender, receiver) = mpsc::channel::<(&'static str, Bytes, u64)>(16);
    let generator = {
        let (o, projects) = (o.clone(), projects.clone());
        tokio::task::spawn_blocking(move || generate(o, projects, sender))
    };
    let receiver = Arc::new(tokio::sync::Mutex::new(receiver));
    let counts: Arc<[AtomicU64; 4]> = Arc::new(Default::default());
    let started = Instant::now();
    let peak_rss = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (receiver, counts, auth) = (Arc::clone(&receiver), Arc::clone(&counts), auth.clone());
            let mut connection = Connection::new(server.addr);
            tokio::spawn(async move {
                let headers = [auth, ("content-type", header("application/x-ndjson"))];
                loop {
                    let next = receiver.lock().await.recv().await;
                    let Some((path, body, rows)) = next else { return Ok::<(), String>(()) };
                    match connection.send(Method::POST, path, &headers, body).await {
                        Ok((status, _)) if status.is_success() => {}
                        Ok((status, answer)) => {
                            return Err(format!("{path} answered {status}: {}", String::from_utf8_lossy(&answer)));
                        }
                        Err(e) => return Err(format!("{path}: {e}")),
                    }
                    let kind = match path {
                        p if p.ends_with("records") => 0,
                        p if p.ends_with("messages") => 1,
                        p if p.ends_with("steps") => 2,
                        _ => 3,
                    };
                    counts[kind].fetch_add(rows, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let progress = {
        let (counts, peak_rss, pid, total) = (Arc::clone(&counts), Arc::clone(&peak_rss), server.pid(), o.records);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(15)).await;
                let records = counts[0].load(Ordering::Relaxed);
                let rss = rss_kb(pid).unwrap_or(0);
                peak_rss.fetch_max(rss, Ordering::Relaxed);
                let seconds = started.elapsed().as_secs_f64();
                eprintln!(
                    "bench insights: {records} of {total} records, {} messages, {:.0} records/s, server {} MB",
                    counts[1].load(Ordering::Relaxed),
                    records as f64 / seconds,
                    rss / 1024
                );
            }
        })
    };
    for worker in workers {
        worker.await??;
    }
    generator.await?;
    progress.abort();
    let seconds = started.elapsed().as_secs_f64();
    let [records, messages, steps, escalations] = [0, 1, 2, 3].map(|i| counts[i].load(Ordering::Relaxed));
    let figures = LoadFigures {
        records,
        messages,
        steps,
        escalations,
        seconds,
        records_per_second: records as f64 / seconds,
        rows_per_second: (records + messages + steps + escalations) as f64 / seconds,
        server_rss_mb: peak_rss.load(Ordering::Relaxed) as f64 / 1024.0,
    };
    let loaded = Loaded { key, projects, records, messages, steps, escalations, load_seconds: seconds };
    Ok((loaded, figures))
}

fn table(f: &Figures) -> String {
    let mut out = format!(
        "Insights on {} records ({} projects, {} days, {}); the project timed has {} records in its last 30 days.\n\n",
        f.records,
        f.projects,
        f.days,
        f.database,
        f.records_in_30_days.map_or_else(|| "?".to_owned(), |n| n.to_string())
    );
    if let Some(load) = &f.load {
        out.push_str(&format!(
            "Loaded {} records, {} messages, {} steps, {} escalations in {:.0} s: {:.0} records/s, {:.0} rows/s; server peak {:.0} MB.\n\n",
            load.records, load.messages, load.steps, load.escalations, load.seconds, load.records_per_second, load.rows_per_second, load.server_rss_mb
        ));
    }
    out.push_str("| report |");
    for v in &f.variants {
        out.push_str(&format!(" {} p50 / p99 ms |", v.name));
    }
    out.push_str("\n| --- |");
    for _ in &f.variants {
        out.push_str(" ---: |");
    }
    out.push('\n');
    for (i, (report, _)) in REPORTS.iter().enumerate() {
        out.push_str(&format!("| {report} |"));
        for v in &f.variants {
            let q = &v.queries[i];
            let errors = if q.errors > 0 { format!(" ({} errors)", q.errors) } else { String::new() };
            out.push_str(&format!(" {:.1} / {:.1}{errors} |", q.latency_ms.p50, q.latency_ms.p99));
        }
        out.push('\n');
    }
    out
}
