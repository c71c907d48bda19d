//! The `parley` binary.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use parley_server::config::{Config, Overrides};

/// mimalloc instead of the system allocator: a request allocates and frees many small values
/// (parsed JSON, headers, futures) across two threads, and glibc's malloc and free showed as 8%
/// of the server's time in profiles of the update path.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// parley: a self-hosted analytics store for conversational AI agents.
#[derive(Debug, Parser)]
#[command(name = "parley", version)]
struct Cli {
    /// A TOML configuration file.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Args)]
struct ServerArgs {
    /// Address and port to listen on (port 0 picks a free one).
    #[arg(long, value_name = "ADDR")]
    listen: Option<std::net::SocketAddr>,
    /// Where the embedded store lives.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// `sqlite://PATH` or `postgres://…`.
    #[arg(long, value_name = "URL")]
    database: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server.
    Serve(ServerArgs),
    /// Print the effective configuration, secrets hidden.
    Config(ServerArgs),
    /// Apply schema migrations and exit.
    Migrate(ServerArgs),
}

fn load(cli_config: Option<&PathBuf>, args: ServerArgs) -> Result<Config, String> {
    let overrides = Overrides { listen: args.listen, data_dir: args.data_dir, database_url: args.database };
    Config::load(cli_config.map(PathBuf::as_path), &overrides)
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => match load(cli.config.as_ref(), args) {
            Ok(config) => serve(config).await,
            Err(e) => Err(e),
        },
        Command::Config(args) => load(cli.config.as_ref(), args).map(|config| print!("{}", config.to_redacted_toml())),
        Command::Migrate(args) => match load(cli.config.as_ref(), args) {
            Ok(config) => parley_store::open(&config.effective_database_url(), config.database_pool_size)
                .await
                .map(|_| println!("migrations applied"))
                .map_err(|e| format!("cannot open the database: {e}")),
            Err(e) => Err(e),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("parley: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config) -> Result<(), String> {
    let _log = parley_server::telemetry::init_logging(config.log_format);
    let running = parley_server::start(&config).await.map_err(|e| e.to_string())?;
    if let Some(first) = &running.first_start {
        println!(
            "parley: first start. Created organisation {} with admin user {}.",
            first.organisation, first.admin_email
        );
        match &first.generated_api_key {
            Some(key) => println!("parley: admin API key (shown only now, keep it safe): {key}"),
            None => println!("parley: the admin API key is the one given in PARLEY_ADMIN_API_KEY."),
        }
        println!("parley: try  curl -H 'X-API-Key: <key>' http://{}/new/v2.0/projects", running.addr);
    }
    running.until(shutdown_signal()).await.map_err(|e| e.to_string())
}

/// SIGINT or SIGTERM.
async fn shutdown_signal() {
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
