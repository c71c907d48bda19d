//! `parley-bench`: generates a realistic data set, loads it into a real `parley` over HTTP, and
//! measures ingest, updates and reads next to what bounds them (the raw engine without HTTP, an
//! empty HTTP handler) and next to a peer (SAP CAP on the same records). Benchmarks are not tests:
//! nothing here has a pass/fail bound.

mod data;
mod insights;
mod load;
mod matrix;
mod peer;
mod process;
mod report;
mod run;
mod soak;
mod workload;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use data::Arrival;

/// Errors of the benchmark: reported in one line and the run stops.
pub type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

#[derive(Debug, Parser)]
#[command(name = "parley-bench")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Runs the whole benchmark and writes the figures as JSON and a table.
    Run(Options),
    /// A long mixed load at a fixed rate, reporting memory, open files, database size and
    /// latency every minute.
    Soak(soak::SoakOptions),
    /// Every Insights report timed over a large data set (ten million records by default),
    /// over 30 days and a year, alone and compared, quiet and beside ingest.
    Insights(insights::InsightsOptions),
    /// The same OData v4.01 requests sent to parley and to SAP CAP over the same records: what
    /// each answers, and where both answer, whether they agree.
    OdataMatrix(matrix::MatrixOptions),
    /// An HTTP server that answers every request 204 after reading its body: the ceiling of
    /// HTTP on this machine. Started by `run` as a child process.
    EmptyServer,
}

/// What `run` measures, and how.
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// Records in the generated data set.
    #[arg(long, default_value_t = 300_000)]
    pub records: usize,
    /// Projects the records are spread over (unevenly).
    #[arg(long, default_value_t = 5)]
    pub projects: usize,
    /// Seed of the generator: the same seed gives the same data.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Connections (or, for the raw engine, tasks) of the update load.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Seconds each update load is measured.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Seconds of load before measuring starts.
    #[arg(long, default_value_t = 2)]
    pub warmup: u64,
    /// The order records are ingested in: as the inputs happened (a live feed) or session by
    /// session at random times (a back-fill).
    #[arg(long, value_enum, default_value_t = Arrival::Time)]
    pub arrival: Arrival,
    /// Records per NDJSON ingest request.
    #[arg(long, default_value_t = 1000)]
    pub batch: usize,
    /// Ingest requests in flight at once.
    #[arg(long, default_value_t = 4)]
    pub ingest_concurrency: usize,
    /// Calls of each read query.
    #[arg(long, default_value_t = 50)]
    pub query_calls: u64,
    /// Before each phase, wait (up to 5 minutes) until the 1-minute load average is below this;
    /// 0 does not wait.
    #[arg(long, default_value_t = 1.5)]
    pub max_load: f64,
    /// The `parley` binary; by default the release build, rebuilt first when run through cargo.
    #[arg(long)]
    pub parley_bin: Option<PathBuf>,
    /// The database parley runs on, as `--database` takes it (an empty PostgreSQL or Citus
    /// database); by default the embedded SQLite file in a scratch directory.
    #[arg(long)]
    pub database: Option<String>,
    /// Conversation messages per input: after the record phases, ingest one user message and
    /// this many minus one bot answers per record, then time the conversations index and its
    /// search. 0 leaves conversations out.
    #[arg(long, default_value_t = 0)]
    pub messages_per_input: usize,
    /// Leave out the raw engine.
    #[arg(long)]
    pub no_raw: bool,
    /// Leave out the empty HTTP handler.
    #[arg(long)]
    pub no_empty: bool,
    /// Leave out the peer (SAP CAP), for a machine without Node.js.
    #[arg(long)]
    pub no_peer: bool,
    /// Leave out parley itself (to look at the engine or the peer alone).
    #[arg(long)]
    pub no_parley: bool,
    /// Where to write the JSON figures; by default target/bench/results-<time>.json, and a
    /// copy in target/bench/latest.json.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("parley-bench: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Cmd::Run(options) => runtime.block_on(run::run(options)),
        Cmd::Soak(options) => runtime.block_on(soak::soak(options)),
        Cmd::Insights(options) => runtime.block_on(insights::insights(options)),
        Cmd::OdataMatrix(options) => runtime.block_on(matrix::matrix(options)),
        Cmd::EmptyServer => runtime.block_on(empty_server()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("parley-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Answers every request 204 once its body is read.
async fn empty_server() -> Result<()> {
    let app = axum::Router::new().fallback(|_body: bytes::Bytes| async { axum::http::StatusCode::NO_CONTENT });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("empty handler listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
