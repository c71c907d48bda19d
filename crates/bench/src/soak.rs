//! The soak: a long, steady, mixed load at a fixed rate (new records, updates by input, list and
//! OData reads), with the server's resident memory, open files, database size and the latency
//! of each minute reported as it goes. What it shows is whether anything grows that should not.
//!
//! The load is open: requests are scheduled at the rate whatever the answers take, and each
//! latency counts from when its request was due, so a server that falls behind shows it in the
//! percentiles (and in `late`, requests that found every connection busy) instead of hiding it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http::{HeaderValue, Method};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use tokio::sync::mpsc;

use crate::Result;
use crate::data::{Arrival, Dataset, Spec};
use crate::load::{Connection, Latency, histogram};
use crate::process::rss_kb;
use crate::run::{create_projects, header, parley_binary, scratch, start_parley, target_dir};
use crate::workload::Workload;

/// What `soak` runs.
#[derive(Debug, Clone, clap::Args)]
pub struct SoakOptions {
    /// Minutes of load.
    #[arg(long, default_value_t = 60)]
    pub minutes: u64,
    /// Requests a second, every kind together.
    #[arg(long, default_value_t = 200)]
    pub rate: u64,
    /// Connections the requests are sent over.
    #[arg(long, default_value_t = 32)]
    pub connections: usize,
    /// Records ingested before the load starts; the updates and reads are about them.
    #[arg(long, default_value_t = 100_000)]
    pub records: usize,
    /// Records in each ingest of the load: how fast the data grows.
    #[arg(long, default_value_t = 100)]
    pub batch: usize,
    /// Seed of the generator.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// The `parley` binary; by default the release build, rebuilt first when run through cargo.
    #[arg(long)]
    pub parley_bin: Option<PathBuf>,
    /// The database parley runs on (an empty PostgreSQL or Citus database); by default the
    /// embedded store in a scratch directory.
    #[arg(long)]
    pub database: Option<String>,
    /// Where to write the JSON figures; by default target/bench/soak-<time>.json.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// The kinds of request, in the mix of every 20: 1 ingest of `--batch` new records, 14 updates by
/// input, 3 list reads, 2 OData reads (each a first page, one contact's records or one day's).
#[derive(Debug, Clone, Copy)]
enum Kind {
    Ingest,
    Update,
    List,
    OData,
}

const MIX: [Kind; 20] = {
    use Kind::*;
    [
        Ingest, Update, Update, List, Update, Update, OData, Update, Update, List, Update, Update, Update, OData,
        Update, Update, List, Update, Update, Update,
    ]
};

/// One minute of the soak.
#[derive(Debug, Clone, Serialize)]
pub struct Minute {
    pub minute: u64,
    /// Requests answered 2xx.
    pub ok: u64,
    /// Other answers by status (`0`: no answer).
    pub errors: BTreeMap<u16, u64>,
    /// Requests that found every connection busy and were dropped.
    pub late: u64,
    pub latency_ms: Latency,
    pub rss_mb: f64,
    pub open_files: usize,
    /// The data directory on disk: the database, and of it the write-ahead log.
    pub database_mb: f64,
    pub log_mb: f64,
}

#[derive(Debug, Serialize)]
struct SoakResults {
    command: String,
    rate: u64,
    connections: usize,
    records_before: usize,
    minutes: Vec<Minute>,
}

/// What the senders gather between two reports.
struct Gathered {
    latencies: Histogram<u64>,
    ok: u64,
    errors: BTreeMap<u16, u64>,
}

impl Gathered {
    fn new() -> Self {
        Gathered { latencies: histogram(), ok: 0, errors: BTreeMap::new() }
    }
}

/// The requests of the mix, made from the workload.
struct Requests {
    workload: Arc<Workload>,
    bodies: Vec<Bytes>,
    lists: Vec<String>,
    odata: Vec<String>,
}

impl Requests {
    /// The method, path and body of request `n`.
    fn make(&self, n: u64, rng: &mut StdRng) -> (Method, String, Bytes, &'static str) {
        match MIX[(n % MIX.len() as u64) as usize] {
            Kind::Ingest => {
                // Batch k again, with inputs of its own: new records, as a live feed sends them.
                let k = n / MIX.len() as u64;
                let body = &self.bodies[(k % self.bodies.len() as u64) as usize];
                let text = String::from_utf8_lossy(body).replace("\"inputId\":\"", &format!("\"inputId\":\"s{k}-"));
                (Method::POST, "/new/v2.0/analytics/records".into(), Bytes::from(text), "application/x-ndjson")
            }
            Kind::Update => {
                (Method::PATCH, "/new/v2.0/analytics".into(), self.workload.update_by_input(rng), "application/json")
            }
            Kind::List => (Method::GET, self.lists[rng.random_range(0..self.lists.len())].clone(), Bytes::new(), ""),
            Kind::OData => (Method::GET, self.odata[rng.random_range(0..self.odata.len())].clone(), Bytes::new(), ""),
        }
    }
}

pub async fn soak(o: SoakOptions) -> Result<()> {
    let target = target_dir()?;
    let bin = parley_binary(o.parley_bin.as_deref(), &target)?;
    let (bench_dir, scratch) = scratch("soak-")?;
    let data_dir = scratch.path().join("parley-data");
    let (server, key) = start_parley(&bin, &data_dir, o.database.as_deref())?;
    let auth = ("x-api-key", header(&key));

    eprintln!("soak: generating and ingesting {} records", o.records);
    let data =
        Arc::new(Dataset::generate(Spec { records: o.records, projects: 3, seed: o.seed, arrival: Arrival::Time }));
    let mut connection = Connection::new(server.addr);
    let workload = Arc::new(create_projects(&mut connection, &data, &auth).await?);
    let ndjson = [auth.clone(), ("content-type", header("application/x-ndjson"))];
    for body in workload.ingest_bodies(1000) {
        let (status, answer) = connection.send(Method::POST, "/new/v2.0/analytics/records", &ndjson, body).await?;
        if !status.is_success() {
            return Err(format!("ingest answered {status}: {}", String::from_utf8_lossy(&answer)).into());
        }
    }
    // The reads an integration or a dashboard makes all day: a first page, one contact, one day.
    let everyday = |name: &str| ["first page", "one contact", "one day"].iter().any(|n| name.starts_with(n));
    let requests = Arc::new(Requests {
        bodies: workload.ingest_bodies(o.batch),
        lists: workload.list_queries().into_iter().filter(|(n, _, _)| everyday(n)).map(|(_, p, _)| p).collect(),
        odata: workload
            .odata_queries("/v2.4/Analytics")
            .into_iter()
            .filter(|(n, _)| everyday(n))
            .map(|(_, p)| p)
            .collect(),
        workload,
    });

    // The senders: each takes the next due request and records how long after its due time
    // the answer came.
    let gathered = Arc::new(Mutex::new(Gathered::new()));
    let (mut due, queue) = due_queue(o.connections);
    let senders: Vec<_> = (0..o.connections)
        .map(|i| {
            let (queue, gathered, requests, auth) =
                (queue.clone(), Arc::clone(&gathered), Arc::clone(&requests), auth.clone());
            let mut connection = Connection::new(server.addr);
            let mut rng = StdRng::seed_from_u64(o.seed.wrapping_add(i as u64));
            tokio::spawn(async move {
                while let Some((n, due_at)) = queue.next().await {
                    let (method, path, body, content_type) = requests.make(n, &mut rng);
                    let mut headers = vec![auth.clone()];
                    if !content_type.is_empty() {
                        headers.push(("content-type", HeaderValue::from_static(content_type)));
                    }
                    let answer = connection.send(method, &path, &headers, body).await;
                    let micros = due_at.elapsed().as_micros().max(1) as u64;
                    let mut gathered = gathered.lock().unwrap_or_else(|e| e.into_inner());
                    match answer {
                        Ok((status, _)) if status.is_success() => {
                            gathered.ok += 1;
                            let _ = gathered.latencies.record(micros);
                        }
                        Ok((status, _)) => *gathered.errors.entry(status.as_u16()).or_default() += 1,
                        Err(_) => *gathered.errors.entry(0).or_default() += 1,
                    }
                }
            })
        })
        .collect();

    eprintln!("soak: {} requests/s over {} connections for {} minutes", o.rate, o.connections, o.minutes);
    println!("| minute | ok | errors | late | p50 ms | p99 ms | max ms | RSS MB | open files | database MB | log MB |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    let started = Instant::now();
    let interval = Duration::from_secs_f64(1.0 / o.rate.max(1) as f64);
    let mut minutes = Vec::new();
    let mut late = 0u64;
    let mut n = 0u64;
    for minute in 1..=o.minutes {
        let end = started + Duration::from_secs(60 * minute);
        loop {
            let due_at = started + interval.mul_f64(n as f64);
            if due_at >= end {
                break;
            }
            tokio::time::sleep_until(due_at.into()).await;
            if !due.offer((n, due_at)) {
                late += 1;
            }
            n += 1;
        }
        let taken = std::mem::replace(&mut *gathered.lock().unwrap_or_else(|e| e.into_inner()), Gathered::new());
        let figures = Minute {
            minute,
            ok: taken.ok,
            errors: taken.errors,
            late: std::mem::take(&mut late),
            latency_ms: Latency::of(&taken.latencies),
            rss_mb: rss_kb(server.pid()).unwrap_or(0) as f64 / 1024.0,
            open_files: open_files(server.pid()),
            database_mb: directory_bytes(&data_dir, &|_| true) as f64 / MB,
            log_mb: directory_bytes(&data_dir, &|name| name.ends_with("-wal")) as f64 / MB,
        };
        let errors: u64 = figures.errors.values().sum();
        println!(
            "| {} | {} | {errors} | {} | {:.2} | {:.2} | {:.1} | {:.1} | {} | {:.1} | {:.1} |",
            figures.minute,
            figures.ok,
            figures.late,
            figures.latency_ms.p50,
            figures.latency_ms.p99,
            figures.latency_ms.max,
            figures.rss_mb,
            figures.open_files,
            figures.database_mb,
            figures.log_mb
        );
        minutes.push(figures);
    }
    due.close();
    for sender in senders {
        let _ = sender.await;
    }
    server.stop();
    let results = SoakResults {
        command: std::env::args().collect::<Vec<_>>().join(" "),
        rate: o.rate,
        connections: o.connections,
        records_before: o.records,
        minutes,
    };
    let out = o.out.clone().unwrap_or_else(|| {
        let stamp = parley_core::value::format_time(parley_core::value::now()).replace([':', '.'], "-");
        bench_dir.join(format!("soak-{stamp}.json"))
    });
    std::fs::write(&out, serde_json::to_string_pretty(&results)?)?;
    println!("Figures written to {}", out.display());
    Ok(())
}

/// Files the process has open.
fn open_files(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |entries| entries.count())
}

const MB: f64 = 1024.0 * 1024.0;

/// Bytes of the files in `dir` and below whose names `counted` takes.
fn directory_bytes(dir: &Path, counted: &dyn Fn(&str) -> bool) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|entry| match entry.metadata() {
            Ok(meta) if meta.is_dir() => directory_bytes(&entry.path(), counted),
            Ok(meta) if counted(&entry.file_name().to_string_lossy()) => meta.len(),
            _ => 0,
        })
        .sum()
}

/// A bounded queue of due requests shared by the senders: `offer` never waits, so a request
/// that finds every sender busy and the queue full is counted late instead of delaying the
/// schedule.
fn due_queue(capacity: usize) -> (Due, Queue) {
    let (sender, receiver) = mpsc::channel(capacity.max(1));
    (Due(Some(sender)), Queue(Arc::new(tokio::sync::Mutex::new(receiver))))
}

struct Due(Option<mpsc::Sender<(u64, Instant)>>);

impl Due {
    fn offer(&self, item: (u64, Instant)) -> bool {
        self.0.as_ref().is_some_and(|sender| sender.try_send(item).is_ok())
    }

    fn close(&mut self) {
        self.0 = None;
    }
}

#[derive(Clone)]
struct Queue(Arc<tokio::sync::Mutex<mpsc::Receiver<(u64, Instant)>>>);

impl Queue {
    async fn next(&self) -> Option<(u64, Instant)> {
        self.0.lock().await.recv().await
    }
}
