//! One benchmark run: generate, then measure the raw engine, the empty HTTP handler, parley and
//! the peer in turn (never two at once), then write the figures.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode};
use parley_core::value::{format_time, now};
use parley_core::{NewRecord, ObjectId, ProjectSettings, Record};
use parley_store::RecordStore;
use parley_store::sqlite::SqliteStore;
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::Options;
use crate::Result;
use crate::data::{Dataset, Spec};
use crate::load::{Connection, HttpWorker, LoadFigures, Outcome, QueryFigures, Worker, closed_loop, run_query};
use crate::process::{Machine, RssSampler, Server, wait_for_quiet};
use crate::report::{
    ConversationFigures, DatasetFigures, IngestFigures, ParleyFigures, PeerFigures, Phase, Ratios, RawFigures, Results,
};
use crate::workload::Workload;

/// How long a phase may wait for the machine to become quiet.
const PATIENCE: Duration = Duration::from_secs(300);

pub async fn run(o: Options) -> Result<()> {
    let target = target_dir()?;
    let parley_bin = parley_binary(o.parley_bin.as_deref(), &target)?;
    let (bench_dir, scratch) = scratch("run-")?;
    let started_at = format_time(now());
    wait_for_quiet(o.max_load, PATIENCE, "the fsync probe");
    let machine = Machine::describe(&bench_dir);

    eprintln!("bench: generating {} records (seed {})", o.records, o.seed);
    let data = Arc::new(Dataset::generate(Spec {
        records: o.records,
        projects: o.projects,
        seed: o.seed,
        arrival: o.arrival,
    }));
    let contacts =
        data.records.iter().map(|r| (r.project, &r.contact_id)).collect::<std::collections::HashSet<_>>().len();

    let raw = if o.no_raw { None } else { Some(raw_engine(&o, &data, scratch.path()).await?) };
    let empty_handler = if o.no_empty { None } else { Some(empty_handler(&o, &data).await?) };
    let (parley, workload, ndjson_bytes) = if o.no_parley {
        let project_ids = (0..data.projects).map(|_| ObjectId::generate().to_string()).collect();
        (None, Arc::new(Workload { data: Arc::clone(&data), project_ids }), 0)
    } else {
        let (figures, workload, bytes) = parley(&o, &data, &parley_bin, &scratch.path().join("parley-data")).await?;
        (Some(figures), workload, bytes)
    };
    let peer = if o.no_peer {
        Err("left out (--no-peer)".to_owned())
    } else {
        peer(&o, &workload, &target).await.map_err(|e| e.to_string())
    };

    let per_second = |p: &Phase<LoadFigures>| p.figures.per_second;
    let parley_rate = parley.as_ref().map(|p| per_second(&p.update_by_input));
    let ratio = |theirs: Option<f64>| Some(parley_rate? / theirs?);
    let ratios = Ratios {
        parley_to_http_ceiling: ratio(empty_handler.as_ref().map(per_second)),
        parley_to_raw_engine: ratio(raw.as_ref().map(|r| per_second(&r.update_by_input))),
        parley_to_peer: ratio(peer.as_ref().ok().map(|p| per_second(&p.update_by_key))),
        ingest_to_raw_engine: parley
            .as_ref()
            .zip(raw.as_ref())
            .map(|(p, r)| p.ingest.figures.per_second / r.ingest.figures.per_second),
    };
    let results = Results {
        started_at,
        command: std::env::args().collect::<Vec<_>>().join(" "),
        machine,
        dataset: DatasetFigures {
            records: data.records.len(),
            projects: data.projects,
            sessions: data.sessions.len(),
            contacts,
            seed: o.seed,
            arrival: o.arrival,
            ndjson_bytes,
        },
        raw,
        empty_handler,
        parley,
        peer,
        ratios,
    };
    let json = serde_json::to_string_pretty(&results)?;
    let out = o
        .out
        .clone()
        .unwrap_or_else(|| bench_dir.join(format!("results-{}.json", results.started_at.replace([':', '.'], "-"))));
    std::fs::write(&out, &json)?;
    std::fs::write(bench_dir.join("latest.json"), &json)?;
    println!("{}", results.table());
    println!("Figures written to {}", out.display());
    Ok(())
}

/// The workspace's target directory: the parent of the directory this binary is in.
/// `target/bench`, where figures are written, and a fresh scratch directory in it named from
/// `prefix`, removed when dropped.
pub fn scratch(prefix: &str) -> Result<(PathBuf, tempfile::TempDir)> {
    let bench_dir = target_dir()?.join("bench");
    std::fs::create_dir_all(&bench_dir)?;
    let scratch = tempfile::Builder::new().prefix(prefix).tempdir_in(&bench_dir)?;
    Ok((bench_dir, scratch))
}

pub fn target_dir() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    exe.parent()
        .and_then(Path::parent)
        .map(Path::to_owned)
        .ok_or_else(|| "cannot tell the target directory from this binary's path".into())
}

/// The `parley` release binary, built first when the benchmark runs through cargo.
pub fn parley_binary(given: Option<&Path>, target: &Path) -> Result<PathBuf> {
    if let Some(path) = given {
        return Ok(path.to_owned());
    }
    if let Some(cargo) = std::env::var_os("CARGO") {
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let status = Command::new(cargo)
            .args(["build", "--release", "-p", "parley-server", "--bin", "parley"])
            .current_dir(workspace)
            .status()?;
        if !status.success() {
            return Err("building the parley release binary failed".into());
        }
    }
    let bin = target.join("release/parley");
    if bin.exists() {
        Ok(bin)
    } else {
        Err(format!("{} is missing: run `cargo build --release -p parley-server` or pass --parley-bin", bin.display())
            .into())
    }
}

pub fn header(value: &str) -> HeaderValue {
    HeaderValue::from_str(value).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// A closed-loop phase of `o.concurrency` HTTP workers; `next(i)` makes worker `i`'s requests.
async fn http_load<F>(
    o: &Options,
    phase: &str,
    server: &Server,
    headers: Vec<(&'static str, HeaderValue)>,
    expect: Option<StatusCode>,
    next: impl Fn(usize) -> F,
) -> Phase<LoadFigures>
where
    F: FnMut() -> (String, Bytes) + Send + 'static,
{
    let load_average = wait_for_quiet(o.max_load, PATIENCE, phase);
    eprintln!("bench: {phase}: {} connections, {} s (load average {load_average:.2})", o.concurrency, o.duration);
    let workers: Vec<_> = (0..o.concurrency)
        .map(|i| HttpWorker {
            connection: Connection::new(server.addr),
            method: Method::PATCH,
            headers: headers.clone(),
            expect,
            next: next(i),
        })
        .collect();
    let rss = RssSampler::start(server.pid());
    let figures = closed_loop(workers, Duration::from_secs(o.warmup), Duration::from_secs(o.duration)).await;
    Phase { load_average, rss_peak_mb: Some(rss.finish()), figures }
}

fn worker_rng(o: &Options, phase: u64, worker: usize) -> StdRng {
    StdRng::seed_from_u64(o.seed.wrapping_mul(1_000_003).wrapping_add(phase * 10_000 + worker as u64))
}

/// The engine driven directly: the same stamped records and the same durable updates, no HTTP.
struct RawWorker {
    store: Arc<SqliteStore>,
    workload: Arc<Workload>,
    rng: StdRng,
    by_session: bool,
}

impl Worker for RawWorker {
    async fn call(&mut self) -> Outcome {
        let update = self.workload.raw_update(&mut self.rng, self.by_session);
        // No pending window: an update that matches nothing is a fault of the data set here.
        match self.store.update_records(update, now(), None).await {
            Ok(outcome) if outcome.matched == 0 => Outcome::Unexpected(404),
            Ok(_) => Outcome::Ok,
            Err(_) => Outcome::Failed,
        }
    }
}

async fn raw_engine(o: &Options, data: &Arc<Dataset>, dir: &Path) -> Result<RawFigures> {
    let path = dir.join("raw/parley.db");
    let store = Arc::new(SqliteStore::open(&path)?);
    let project_ids = (0..data.projects).map(|_| ObjectId::generate().to_string()).collect();
    let workload = Arc::new(Workload { data: Arc::clone(data), project_ids });
    let organisation = ObjectId::generate();
    let settings = ProjectSettings::default();
    let stamped_at = now();
    let batches: Vec<Vec<Record>> = data
        .arrival
        .chunks(o.batch.max(1))
        .map(|chunk| {
            chunk
                .iter()
                .map(|&i| &data.records[i])
                .map(|r| {
                    NewRecord::parse(r.to_json(&workload.project_ids[r.project]))
                        .map(|n| n.stamp(organisation, &settings, stamped_at))
                })
                .collect::<std::result::Result<Vec<_>, _>>()
        })
        .collect::<std::result::Result<_, _>>()?;
    let requests = batches.len();

    let load_average = wait_for_quiet(o.max_load, PATIENCE, "raw engine ingest");
    eprintln!("bench: raw engine: ingest (load average {load_average:.2})");
    let queue = Arc::new(std::sync::Mutex::new(batches.into_iter()));
    let started = Instant::now();
    let tasks: Vec<_> = (0..o.ingest_concurrency.max(1))
        .map(|_| {
            let (queue, store) = (Arc::clone(&queue), Arc::clone(&store));
            tokio::spawn(async move {
                let mut errors = 0u64;
                loop {
                    let next = queue.lock().ok().and_then(|mut q| q.next());
                    let Some(batch) = next else { break };
                    if store.insert_records(batch, now()).await.is_err() {
                        errors += 1;
                    }
                }
                errors
            })
        })
        .collect();
    let mut errors = 0;
    for task in tasks {
        errors += task.await.unwrap_or(1);
    }
    let seconds = started.elapsed().as_secs_f64();
    let ingest = Phase {
        load_average,
        rss_peak_mb: None,
        figures: IngestFigures {
            records: data.records.len(),
            requests,
            batch: o.batch,
            concurrency: o.ingest_concurrency,
            seconds,
            per_second: data.records.len() as f64 / seconds,
            errors,
        },
    };

    let before = store.write_stats();
    let mut updates = Vec::new();
    for (phase, by_session) in [(1, false), (2, true)] {
        let name = if by_session { "raw engine update by session" } else { "raw engine update by input" };
        let load_average = wait_for_quiet(o.max_load, PATIENCE, name);
        eprintln!("bench: {name}: {} tasks, {} s (load average {load_average:.2})", o.concurrency, o.duration);
        let workers = (0..o.concurrency)
            .map(|i| RawWorker {
                store: Arc::clone(&store),
                workload: Arc::clone(&workload),
                rng: worker_rng(o, phase, i),
                by_session,
            })
            .collect();
        let figures = closed_loop(workers, Duration::from_secs(o.warmup), Duration::from_secs(o.duration)).await;
        updates.push(Phase { load_average, rss_peak_mb: None, figures });
    }
    let after = store.write_stats();
    let writes_per_group = (after.writes - before.writes) as f64 / (after.groups - before.groups).max(1) as f64;
    let update_by_session = updates.pop().unwrap_or_else(|| unreachable!("two phases ran"));
    let update_by_input = updates.pop().unwrap_or_else(|| unreachable!("two phases ran"));
    Ok(RawFigures { ingest, update_by_input, update_by_session, writes_per_group })
}

async fn empty_handler(o: &Options, data: &Arc<Dataset>) -> Result<Phase<LoadFigures>> {
    let mut command = Command::new(std::env::current_exe()?);
    command.arg("empty-server");
    let server = Server::start("empty handler", command, "empty handler listening on", Duration::from_secs(30))?;
    let project_ids = (0..data.projects).map(|_| ObjectId::generate().to_string()).collect();
    let workload = Arc::new(Workload { data: Arc::clone(data), project_ids });
    let headers = vec![("content-type", header("application/json"))];
    let phase = http_load(o, "empty handler", &server, headers, Some(StatusCode::NO_CONTENT), |i| {
        let (workload, mut rng) = (Arc::clone(&workload), worker_rng(o, 3, i));
        move || ("/new/v2.0/analytics".to_owned(), workload.update_by_input(&mut rng))
    })
    .await;
    server.stop();
    Ok(phase)
}

/// Starts `parley serve` on a free port with a fresh admin key, rate limits off (one credential
/// drives the whole load), on `database` or the embedded store in `data_dir`.
pub fn start_parley(bin: &Path, data_dir: &Path, database: Option<&str>) -> Result<(Server, String)> {
    let key = rand::random::<[u8; 32]>().iter().map(|b| format!("{b:02x}")).collect::<String>();
    Ok((start_parley_keyed(bin, data_dir, database, &key)?, key))
}

/// [`start_parley`] with the admin key given: on a store started before with it, the key that
/// store knows.
pub fn start_parley_keyed(bin: &Path, data_dir: &Path, database: Option<&str>, key: &str) -> Result<Server> {
    let mut command = Command::new(bin);
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .env("PARLEY_ADMIN_API_KEY", key)
        .env("PARLEY_LOG_FORMAT", "json")
        .env("PARLEY_RATE_LIMIT_PER_MINUTE", "0")
        .env_remove("PARLEY_DATABASE_URL")
        .env_remove("PARLEY_CONFIG");
    if let Some(url) = database {
        command.args(["--database", url]);
    }
    Server::start("parley", command, "parley listening on", Duration::from_secs(60))
}

/// Creates the data set's projects through the API: the workload over them.
pub async fn create_projects(
    connection: &mut Connection,
    data: &Arc<Dataset>,
    auth: &(&'static str, HeaderValue),
) -> Result<Workload> {
    let headers = [auth.clone(), ("content-type", header("application/json")), ("accept", header("application/json"))];
    let mut project_ids = Vec::new();
    for k in 0..data.projects {
        let body = Bytes::from(format!(r#"{{"name":"Support bot {}"}}"#, k + 1));
        let (status, answer) = connection.send(Method::POST, "/new/v2.0/projects", &headers, body).await?;
        let answer: serde_json::Value = serde_json::from_slice(&answer)?;
        let id = answer["_id"].as_str().ok_or_else(|| format!("creating a project answered {status}: {answer}"))?;
        project_ids.push(id.to_owned());
    }
    Ok(Workload { data: Arc::clone(data), project_ids })
}

async fn parley(
    o: &Options,
    data: &Arc<Dataset>,
    bin: &Path,
    data_dir: &Path,
) -> Result<(ParleyFigures, Arc<Workload>, usize)> {
    let (server, key) = start_parley(bin, data_dir, o.database.as_deref())?;
    let auth = ("x-api-key", header(&key));
    let json = ("content-type", header("application/json"));
    let accept_json = ("accept", header("application/json"));

    let mut connection = Connection::new(server.addr);
    let workload = Arc::new(create_projects(&mut connection, data, &auth).await?);
    let bodies = Arc::new(workload.ingest_bodies(o.batch));
    let ndjson_bytes = bodies.iter().map(Bytes::len).sum();

    // Ingest.
    let load_average = wait_for_quiet(o.max_load, PATIENCE, "parley ingest");
    eprintln!(
        "bench: parley ingest: {} requests of {} records, {} at once (load average {load_average:.2})",
        bodies.len(),
        o.batch,
        o.ingest_concurrency
    );
    let rss = RssSampler::start(server.pid());
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..o.ingest_concurrency.max(1))
        .map(|_| {
            let (bodies, next) = (Arc::clone(&bodies), Arc::clone(&next));
            let mut connection = Connection::new(server.addr);
            let headers = [auth.clone(), ("content-type", header("application/x-ndjson")), accept_json.clone()];
            tokio::spawn(async move {
                let mut errors = 0u64;
                while let Some(body) = bodies.get(next.fetch_add(1, Ordering::Relaxed)) {
                    match connection.send(Method::POST, "/new/v2.0/analytics/records", &headers, body.clone()).await {
                        Ok((status, _)) if status == StatusCode::CREATED || status == StatusCode::OK => {}
                        _ => errors += 1,
                    }
                }
                errors
            })
        })
        .collect();
    let mut errors = 0;
    for task in tasks {
        errors += task.await.unwrap_or(1);
    }
    let seconds = started.elapsed().as_secs_f64();
    let ingest = Phase {
        load_average,
        rss_peak_mb: Some(rss.finish()),
        figures: IngestFigures {
            records: data.records.len(),
            requests: bodies.len(),
            batch: o.batch,
            concurrency: o.ingest_concurrency,
            seconds,
            per_second: data.records.len() as f64 / seconds,
            errors,
        },
    };
    drop(bodies);

    // Updates.
    let headers = vec![auth.clone(), json.clone()];
    let update_by_input =
        http_load(o, "parley PATCH by inputId", &server, headers.clone(), Some(StatusCode::NO_CONTENT), |i| {
            let (workload, mut rng) = (Arc::clone(&workload), worker_rng(o, 4, i));
            move || ("/new/v2.0/analytics".to_owned(), workload.update_by_input(&mut rng))
        })
        .await;
    let update_by_session =
        http_load(o, "parley PATCH by session", &server, headers, Some(StatusCode::NO_CONTENT), |i| {
            let (workload, mut rng) = (Arc::clone(&workload), worker_rng(o, 5, i));
            move || ("/new/v2.0/analytics".to_owned(), workload.update_by_session(&mut rng))
        })
        .await;

    // Reads.
    let load_average = wait_for_quiet(o.max_load, PATIENCE, "parley reads");
    eprintln!("bench: parley reads, {} calls each (load average {load_average:.2})", o.query_calls);
    let mut list_queries = Vec::new();
    for (name, path, accept) in workload.list_queries() {
        let headers = [auth.clone(), ("accept", header(accept))];
        let paging = name.starts_with("cursor");
        let base = path.clone();
        let figures = run_query(&mut connection, name, &path, &headers, o.query_calls, |body| {
            if !paging {
                return None;
            }
            let page: serde_json::Value = serde_json::from_slice(body).ok()?;
            Some(format!("{base}&next={}", page["nextCursor"].as_str()?))
        })
        .await;
        list_queries.push(figures);
    }
    let odata_queries = odata(o, &mut connection, &workload, &auth).await;
    let conversations = if o.messages_per_input > 0 {
        Some(conversations(o, &server, &mut connection, &workload, &auth).await)
    } else {
        None
    };
    server.stop();
    Ok((
        ParleyFigures { ingest, update_by_input, update_by_session, list_queries, odata_queries, conversations },
        workload,
        ndjson_bytes,
    ))
}

/// Ingests the conversation messages of every record, then times the index and its search.
async fn conversations(
    o: &Options,
    server: &Server,
    connection: &mut Connection,
    workload: &Arc<Workload>,
    auth: &(&'static str, HeaderValue),
) -> ConversationFigures {
    let bodies = Arc::new(workload.message_bodies(o.batch, o.messages_per_input));
    let messages = workload.data.records.len() * o.messages_per_input;
    let load_average = wait_for_quiet(o.max_load, PATIENCE, "parley message ingest");
    eprintln!(
        "bench: parley message ingest: {} requests of {} messages, {} at once (load average {load_average:.2})",
        bodies.len(),
        o.batch,
        o.ingest_concurrency
    );
    let rss = RssSampler::start(server.pid());
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..o.ingest_concurrency.max(1))
        .map(|_| {
            let (bodies, next) = (Arc::clone(&bodies), Arc::clone(&next));
            let mut connection = Connection::new(server.addr);
            let headers = [auth.clone(), ("content-type", header("application/x-ndjson"))];
            tokio::spawn(async move {
                let mut errors = 0u64;
                while let Some(body) = bodies.get(next.fetch_add(1, Ordering::Relaxed)) {
                    match connection
                        .send(Method::POST, "/new/v2.0/conversations/messages", &headers, body.clone())
                        .await
                    {
                        Ok((status, _)) if status == StatusCode::CREATED || status == StatusCode::OK => {}
                        _ => errors += 1,
                    }
                }
                errors
            })
        })
        .collect();
    let mut errors = 0;
    for task in tasks {
        errors += task.await.unwrap_or(1);
    }
    let seconds = started.elapsed().as_secs_f64();
    let ingest = Phase {
        load_average,
        rss_peak_mb: Some(rss.finish()),
        figures: IngestFigures {
            records: messages,
            requests: bodies.len(),
            batch: o.batch,
            concurrency: o.ingest_concurrency,
            seconds,
            per_second: messages as f64 / seconds,
            errors,
        },
    };
    let load_average = wait_for_quiet(o.max_load, PATIENCE, "parley conversation reads");
    eprintln!("bench: parley conversation reads, {} calls each (load average {load_average:.2})", o.query_calls);
    let headers = [auth.clone(), ("accept", header("application/json"))];
    let mut queries = Vec::new();
    for (name, path) in workload.conversation_queries() {
        queries.push(run_query(connection, name, &path, &headers, o.query_calls, |_| None).await);
    }
    ConversationFigures { ingest, queries }
}

/// parley's OData endpoint, when this build has it.
async fn odata(
    o: &Options,
    connection: &mut Connection,
    workload: &Workload,
    auth: &(&'static str, HeaderValue),
) -> std::result::Result<Vec<QueryFigures>, String> {
    const ROOT: &str = "/v2.4/Analytics";
    let headers = [auth.clone(), ("accept", header("application/json"))];
    let probe = format!("{ROOT}?$top=1");
    match connection.send(Method::GET, &probe, &headers, Bytes::new()).await {
        Ok((status, _)) if status.is_success() => {}
        Ok((status, _)) => return Err(format!("GET {probe} answered {status}: no OData endpoint in this build")),
        Err(e) => return Err(format!("GET {probe} failed: {e}")),
    }
    let mut figures = Vec::new();
    for (name, path) in workload.odata_queries(ROOT) {
        figures.push(run_query(connection, name, &path, &headers, o.query_calls, |_| None).await);
    }
    // What compression costs the server: one full page, sent plain, gzipped and in brotli (the
    // client here keeps the bytes as they come, so the difference is the server's work).
    let (p, _, _) = workload.read_targets();
    let page = format!("{ROOT}?$filter=projectId%20eq%20'{p}'&$orderby=timestamp&$top=10000");
    for encoding in ["identity", "gzip", "br"] {
        let headers = [auth.clone(), ("accept", header("application/json")), ("accept-encoding", header(encoding))];
        let size = match connection.send(Method::GET, &page, &headers, Bytes::new()).await {
            Ok((status, body)) if status.is_success() => body.len(),
            _ => 0,
        };
        let name = format!("full page (10 000), {encoding}, {} KB", size / 1024);
        figures.push(run_query(connection, &name, &page, &headers, o.query_calls, |_| None).await);
    }
    Ok(figures)
}

async fn peer(o: &Options, workload: &Arc<Workload>, target: &Path) -> Result<PeerFigures> {
    let dir = crate::peer::directory(target);
    eprintln!("bench: peer: installing SAP CAP in {} (when needed)", dir.display());
    crate::peer::setup(&dir)?;
    eprintln!("bench: peer: loading {} records with cds deploy", workload.data.records.len());
    let load_seconds = crate::peer::prepare(&dir, workload)?.as_secs_f64();
    let version = std::fs::read_to_string(dir.join("node_modules/@sap/cds/package.json"))
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .and_then(|json| Some(format!("@sap/cds {}", json["version"].as_str()?)))
        .unwrap_or_else(|| "@sap/cds".to_owned());
    let server = crate::peer::start(&dir)?;
    let headers = vec![("content-type", header("application/json"))];
    let update_by_key = http_load(o, "SAP CAP PATCH by key", &server, headers, None, |i| {
        let (workload, mut rng) = (Arc::clone(workload), worker_rng(o, 6, i));
        move || workload.peer_update(&mut rng)
    })
    .await;
    let load_average = wait_for_quiet(o.max_load, PATIENCE, "SAP CAP reads");
    eprintln!("bench: SAP CAP reads, {} calls each (load average {load_average:.2})", o.query_calls);
    let mut connection = Connection::new(server.addr);
    let headers = [("accept", header("application/json"))];
    let mut odata_queries = Vec::new();
    for (name, path) in workload.odata_queries("/odata/v4/analytics/Records") {
        odata_queries.push(run_query(&mut connection, name, &path, &headers, o.query_calls, |_| None).await);
    }
    server.stop();
    let _ = std::fs::remove_file(dir.join("db/data/parley.bench-Records.csv"));
    Ok(PeerFigures { version, load_seconds, update_by_key, odata_queries })
}
