//! The `parley` binary.

use std::path::PathBuf;
use std::process::ExitCode;

use std::sync::Arc;

use clap::{Parser, Subcommand};
use parley_server::admin;
use parley_server::config::{Config, Overrides};
use parley_server::ops::export::{ExportFormat, ExportOptions};
use parley_server::ops::import::ImportOptions;
use parley_server::ops::source::Format;
use parley_server::ops::{Collection, Interrupt};
use parley_server::shutdown_signal;
use parley_store::Store;
use parley_store::sqlite::backup;

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

#[derive(Debug, clap::Args)]
struct MigrateArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// Create the PostgreSQL database first when it does not exist (the role needs CREATEDB).
    #[arg(long)]
    create_database: bool,
}

/// A person's new password, for the commands that set one.
#[derive(Debug, Clone, clap::Args)]
struct PasswordArg {
    /// The password; generated and printed when absent.
    #[arg(
        long = "password-from-env",
        env = "PARLEY_NEW_USER_PASSWORD",
        hide_env_values = true,
        value_name = "PASSWORD"
    )]
    password: Option<String>,
}

/// Where an operator's subcommand finds the database.
#[derive(Debug, Clone, clap::Args)]
struct DatabaseArgs {
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
    #[command(after_help = "Example: parley serve --listen 127.0.0.1:8080 --data-dir ./parley-data")]
    Serve(ServerArgs),
    /// Print the effective configuration, secrets hidden.
    #[command(after_help = "Example: parley config --data-dir ./parley-data")]
    Config(ServerArgs),
    /// Apply schema migrations and exit.
    #[command(after_help = "Example: parley migrate --database postgres://parley@localhost/parley --create-database")]
    Migrate(MigrateArgs),
    /// Manage organisations (tenants).
    #[command(subcommand, after_help = "Example: parley organisations create Acme --admin-email admin@acme.example")]
    Organisations(OrganisationsCommand),
    /// Manage users.
    #[command(subcommand, after_help = "Example: parley users list --data-dir ./parley-data")]
    Users(UsersCommand),
    /// Manage API keys.
    #[command(subcommand, after_help = "Example: parley keys create --user ana@acme.example --name powerbi")]
    Keys(KeysCommand),
    /// Manage OAuth2 clients.
    #[command(
        subcommand,
        name = "oauth-clients",
        after_help = "Example: parley oauth-clients create \"nightly export\" --roles odata"
    )]
    OauthClients(ClientsCommand),
    /// Copy the embedded store to FILE, consistently, while the server runs and takes writes.
    ///
    /// On PostgreSQL, use the database's own tools (pg_dump, or a base backup).
    #[command(after_help = "Example: parley backup --data-dir ./parley-data ./parley-2026-12-01.db")]
    Backup {
        /// Where the copy goes (replaced if it exists).
        file: PathBuf,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Load a generated data set (three projects, a year of sessions with their messages, steps,
    /// goals and handovers) so that the reports, OData and the dashboard show something at once.
    ///
    /// On a store without an organisation it first makes one, as the first `parley serve` would,
    /// and prints the admin's API key and password.
    #[command(after_help = "Example: parley demo --records 50000 --days 365 --data-dir ./parley-data")]
    Demo {
        /// Analytics records to generate (each with its messages, and steps and goal events).
        #[arg(long, default_value_t = 20_000)]
        records: u64,
        /// Days of history, ending now.
        #[arg(long, default_value_t = 365)]
        days: u32,
        /// Seed of the generator: the same seed gives the same data (apart from ids and the end time).
        #[arg(long, default_value_t = 7)]
        seed: u64,
        #[arg(long, value_name = "ID")]
        organisation: Option<String>,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Import rows of a collection from NDJSON, JSON or CSV files, standard input, or an OData feed.
    ///
    /// Rows go through the same validation and masking as the ingest API. A refused row is
    /// reported with its line and reason and the rest are imported. Interrupted (Ctrl-C), the same
    /// command goes on where it stopped, without duplicates.
    #[command(after_help = "Example: parley import --collection records history.ndjson --data-dir ./parley-data
From a CSV file, into one project: parley import --collection messages --project 5f0c6bc4ad4f8b0011b2e0e1 transcripts.csv
From an OData feed: parley import --from-odata https://odata-trial.cognigy.ai/v2.4 --apikey KEY --project 5f0c6bc4ad4f8b0011b2e0e1")]
    Import(ImportArgs),
    /// Export a collection, for one project or all, optionally between two times, as NDJSON, CSV or Parquet.
    #[command(after_help = "Example: parley export --collection records --project 5f0c6bc4ad4f8b0011b2e0e1 \
    --from 2026-01-01T00:00:00Z --to 2026-02-01T00:00:00Z --output january.parquet")]
    Export(ExportArgs),
    /// Put a copy made by `parley backup` in place of a stopped embedded store.
    ///
    /// The file it replaces is kept beside it as parley.db.before-restore. A store in use by a
    /// running parley is refused.
    #[command(after_help = "Example: parley restore --data-dir ./parley-data ./parley-2026-12-01.db")]
    Restore {
        /// The copy to put back.
        file: PathBuf,
        #[command(flatten)]
        db: DatabaseArgs,
    },
}

#[derive(Debug, clap::Args)]
struct ImportArgs {
    /// Files to import in turn; `-` (or none) reads standard input.
    files: Vec<PathBuf>,
    /// What the rows are.
    #[arg(long, value_enum, default_value = "records")]
    collection: Collection,
    /// How the files hold rows; by default from each file's extension (.ndjson, .jsonl, .json, .csv),
    /// NDJSON on standard input.
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// An OData v4 feed to read instead of files: a service root (the collection picks the entity
    /// set) or an entity set's address, with any `$filter` of its own.
    #[arg(long, value_name = "URL")]
    from_odata: Option<String>,
    /// The feed's API key, sent as its `apikey` parameter.
    #[arg(long, env = "PARLEY_IMPORT_APIKEY", hide_env_values = true, value_name = "KEY")]
    apikey: Option<String>,
    /// Put every row in this project, whatever project it names (rows from another installation).
    #[arg(long, value_name = "ID")]
    project: Option<String>,
    /// Stop at the first refused row instead of reporting it and going on.
    #[arg(long)]
    strict: bool,
    /// Rows per stored batch, and per page of a feed.
    #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    batch: u64,
    /// Start over, forgetting where an interrupted run of the same import stopped.
    #[arg(long)]
    restart: bool,
    #[arg(long, value_name = "ID")]
    organisation: Option<String>,
    #[command(flatten)]
    db: DatabaseArgs,
}

#[derive(Debug, clap::Args)]
struct ExportArgs {
    /// What to export.
    #[arg(long, value_enum, default_value = "records")]
    collection: Collection,
    /// One project; by default every project of the organisation.
    #[arg(long, value_name = "ID")]
    project: Option<String>,
    /// Rows at or after this time (RFC 3339).
    #[arg(long, value_name = "TIME")]
    from: Option<String>,
    /// Rows before this time (RFC 3339).
    #[arg(long, value_name = "TIME")]
    to: Option<String>,
    /// The format; by default from the output file's extension (.ndjson, .csv, .parquet), else NDJSON.
    #[arg(long, value_enum)]
    format: Option<ExportFormat>,
    /// The file to write (it appears when the export is whole); `-` or none is standard output.
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
    #[arg(long, value_name = "ID")]
    organisation: Option<String>,
    #[command(flatten)]
    db: DatabaseArgs,
}

#[derive(Debug, Subcommand)]
enum OrganisationsCommand {
    /// Create an organisation with an admin; prints its id, the admin's API key and password.
    #[command(
        after_help = "Example: parley organisations create Acme --admin-email admin@acme.example --data-dir ./parley-data"
    )]
    Create {
        name: String,
        #[arg(long, value_name = "EMAIL")]
        admin_email: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
}

#[derive(Debug, Subcommand)]
enum UsersCommand {
    /// Create a user; prints their id, and their password when it was generated.
    #[command(
        after_help = "Example: parley users create --email ana@acme.example --name Ana --roles odata --data-dir ./parley-data"
    )]
    Create {
        #[arg(long, value_name = "EMAIL")]
        email: String,
        #[arg(long)]
        name: String,
        /// Organisation roles, comma-separated: admin, odata, apiKeys.
        #[arg(long, default_value = "")]
        roles: String,
        /// The organisation (required when there are several).
        #[arg(long, value_name = "ID")]
        organisation: Option<String>,
        #[command(flatten)]
        password: PasswordArg,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// List the users of an organisation.
    #[command(after_help = "Example: parley users list --data-dir ./parley-data")]
    List {
        /// The organisation (required when there are several).
        #[arg(long, value_name = "ID")]
        organisation: Option<String>,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Give a person a new password (printed when generated); their OAuth2 sessions end.
    #[command(after_help = "Example: parley users reset-password --email ana@acme.example --data-dir ./parley-data")]
    ResetPassword {
        #[arg(long, value_name = "EMAIL")]
        email: String,
        /// The organisation (required when there are several).
        #[arg(long, value_name = "ID")]
        organisation: Option<String>,
        #[command(flatten)]
        password: PasswordArg,
        #[command(flatten)]
        db: DatabaseArgs,
    },
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Create an API key for a user; prints its id and the key, once.
    #[command(
        after_help = "Example: parley keys create --user ana@acme.example --name powerbi --data-dir ./parley-data"
    )]
    Create {
        #[arg(long, value_name = "EMAIL")]
        user: String,
        #[arg(long, default_value = "cli")]
        name: String,
        #[arg(long, value_name = "ID")]
        organisation: Option<String>,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// List a user's API keys, without their secrets.
    #[command(after_help = "Example: parley keys list --user ana@acme.example --data-dir ./parley-data")]
    List {
        #[arg(long, value_name = "EMAIL")]
        user: String,
        #[arg(long, value_name = "ID")]
        organisation: Option<String>,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Revoke an API key at once.
    #[command(after_help = "Example: parley keys revoke 6b0f3edb217de9e42d9118ed --data-dir ./parley-data")]
    Revoke {
        key_id: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
}

#[derive(Debug, Subcommand)]
enum ClientsCommand {
    /// Register a confidential client for the client_credentials grant; prints its id and secret.
    #[command(
        after_help = "Example: parley oauth-clients create \"nightly export\" --roles odata --data-dir ./parley-data"
    )]
    Create {
        name: String,
        /// Organisation roles of the service user it acts as, comma-separated: admin, odata, apiKeys.
        #[arg(long, default_value = "")]
        roles: String,
        #[arg(long, value_name = "ID")]
        organisation: Option<String>,
        #[command(flatten)]
        db: DatabaseArgs,
    },
}

fn load(cli_config: Option<&PathBuf>, args: ServerArgs) -> Result<Config, String> {
    let overrides = Overrides { listen: args.listen, data_dir: args.data_dir, database_url: args.database };
    Config::load(cli_config.map(PathBuf::as_path), &overrides)
}

/// Opens the store an operator's subcommand works on.
async fn open_store(cli_config: Option<&PathBuf>, db: DatabaseArgs) -> Result<Arc<dyn Store>, String> {
    Ok(open_configured(cli_config, db).await?.1)
}

/// The effective configuration of an operator's subcommand, and the store it names.
async fn open_configured(cli_config: Option<&PathBuf>, db: DatabaseArgs) -> Result<(Config, Arc<dyn Store>), String> {
    let config = load(cli_config, ServerArgs { listen: None, data_dir: db.data_dir, database: db.database })?;
    let store = parley_store::open(&config.effective_database_url(), 2)
        .await
        .map_err(|e| format!("cannot open the database: {e}"))?;
    Ok((config, store))
}

/// An id given on the command line as `flag`.
fn id_arg(flag: &str, text: Option<&str>) -> Result<Option<parley_core::ObjectId>, String> {
    text.map(|t| parley_core::ObjectId::parse(t).map_err(|e| format!("{flag} {t}: {e}"))).transpose()
}

/// A time given on the command line as `flag`.
fn time_arg(flag: &str, text: Option<&str>) -> Result<Option<time::OffsetDateTime>, String> {
    text.map(|t| {
        time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
            .map_err(|e| format!("{flag} {t}: not an RFC 3339 time such as 2026-01-31T00:00:00Z ({e})"))
    })
    .transpose()
}

/// The file of the embedded store a command works on; PostgreSQL has its own tools for `what`.
fn embedded_store(cli_config: Option<&PathBuf>, db: DatabaseArgs, what: &str) -> Result<PathBuf, String> {
    let config = load(cli_config, ServerArgs { listen: None, data_dir: db.data_dir, database: db.database })?;
    parley_store::sqlite_path(&config.effective_database_url()).ok_or_else(|| {
        format!(
            "parley {what} works on the embedded store; on PostgreSQL use the database's own tools \
             (pg_dump and pg_restore, or a base backup with point-in-time recovery)"
        )
    })
}

/// Runs an operator's subcommand.
async fn administer(cli_config: Option<&PathBuf>, command: Command) -> Result<(), String> {
    let failed = |error: admin::AdminError| error.to_string();
    match command {
        Command::Organisations(OrganisationsCommand::Create { name, admin_email, db }) => {
            let store = open_store(cli_config, db).await?;
            let created = admin::create_organisation(store.as_ref(), &name, &admin_email).await.map_err(failed)?;
            println!("organisation: {}", created.id);
            println!("admin: {}", created.admin_email);
            println!("admin API key (shown only now): {}", created.api_key);
            println!("admin password (shown only now): {}", created.password);
        }
        Command::Users(UsersCommand::Create { email, name, roles, organisation, password, db }) => {
            let store = open_store(cli_config, db).await?;
            let org = admin::organisation(store.as_ref(), organisation.as_deref()).await.map_err(failed)?;
            let (user, generated) =
                admin::create_user(store.as_ref(), org.id, &email, &name, &roles, password.password)
                    .await
                    .map_err(failed)?;
            println!("user: {}", user.id);
            if let Some(password) = generated {
                println!("password (shown only now): {password}");
            }
        }
        Command::Users(UsersCommand::List { organisation, db }) => {
            let store = open_store(cli_config, db).await?;
            let org = admin::organisation(store.as_ref(), organisation.as_deref()).await.map_err(failed)?;
            let users = admin::list_users(store.as_ref(), org.id).await.map_err(failed)?;
            let rows: Vec<Vec<String>> = users
                .iter()
                .map(|u| {
                    let roles: Vec<String> = u
                        .roles
                        .iter()
                        .filter_map(|r| serde_json::to_value(r).ok()?.as_str().map(str::to_owned))
                        .collect();
                    let kind = if u.kind == parley_store::UserKind::Person { "person" } else { "service" };
                    vec![u.id.to_string(), u.email.clone(), u.name.clone(), roles.join(","), kind.to_owned()]
                })
                .collect();
            println!("{}", admin::table(&["USER ID", "EMAIL", "NAME", "ROLES", "KIND"], &rows));
        }
        Command::Users(UsersCommand::ResetPassword { email, organisation, password, db }) => {
            let store = open_store(cli_config, db).await?;
            let org = admin::organisation(store.as_ref(), organisation.as_deref()).await.map_err(failed)?;
            let generated =
                admin::reset_password(store.as_ref(), org.id, &email, password.password).await.map_err(failed)?;
            match generated {
                Some(password) => println!("new password (shown only now): {password}"),
                None => println!("password changed"),
            }
        }
        Command::Keys(KeysCommand::Create { user, name, organisation, db }) => {
            let store = open_store(cli_config, db).await?;
            let org = admin::organisation(store.as_ref(), organisation.as_deref()).await.map_err(failed)?;
            let user = admin::person(store.as_ref(), org.id, &user).await.map_err(failed)?;
            let (key, secret) = admin::create_key(store.as_ref(), user.id, &name).await.map_err(failed)?;
            println!("key: {}", key.id);
            println!("API key (shown only now): {secret}");
        }
        Command::Keys(KeysCommand::List { user, organisation, db }) => {
            let store = open_store(cli_config, db).await?;
            let org = admin::organisation(store.as_ref(), organisation.as_deref()).await.map_err(failed)?;
            let user = admin::person(store.as_ref(), org.id, &user).await.map_err(failed)?;
            let keys = store.list_api_keys(user.id).await.map_err(|e| e.to_string())?;
            let rows: Vec<Vec<String>> = keys
                .iter()
                .map(|key| vec![key.id.to_string(), parley_core::value::format_time(key.created_at), key.name.clone()])
                .collect();
            println!("{}", admin::table(&["KEY ID", "CREATED", "NAME"], &rows));
        }
        Command::Keys(KeysCommand::Revoke { key_id, db }) => {
            let store = open_store(cli_config, db).await?;
            admin::revoke_key(store.as_ref(), &key_id).await.map_err(failed)?;
            println!("revoked: {key_id}");
        }
        Command::OauthClients(ClientsCommand::Create { name, roles, organisation, db }) => {
            let store = open_store(cli_config, db).await?;
            let org = admin::organisation(store.as_ref(), organisation.as_deref()).await.map_err(failed)?;
            let client = admin::create_client(store.as_ref(), org.id, &name, &roles).await.map_err(failed)?;
            println!("client_id: {}", client.client_id);
            println!("client_secret (shown only now): {}", client.client_secret);
        }
        Command::Backup { file, db } => {
            let database = embedded_store(cli_config, db, "back up")?;
            let target = file.clone();
            let copying = tokio::task::spawn_blocking(move || backup::backup(&database, &target));
            // Ctrl-C leaves no copy, whole or partial: the copy is made under another name and
            // renamed when whole.
            let copied = tokio::select! {
                copied = copying => copied.map_err(|e| e.to_string())??,
                () = shutdown_signal() => {
                    let partial = backup::partial_copy(&file);
                    let mut journal = partial.clone().into_os_string();
                    journal.push("-journal");
                    let _ = std::fs::remove_file(&partial);
                    let _ = std::fs::remove_file(journal);
                    return Err("interrupted; no copy was made".into());
                }
            };
            println!(
                "backed up {:.1} MB to {} in {:.1} s",
                copied.bytes as f64 / 1e6,
                file.display(),
                copied.took.as_secs_f64()
            );
        }
        Command::Restore { file, db } => {
            let database = embedded_store(cli_config, db, "restore")?;
            let dir = database.parent().map(PathBuf::from).unwrap_or_default();
            let lock = backup::DataDirLock::take(&dir)?;
            let kept = backup::restore(&file, &database, &lock)?;
            println!("restored {} to {}", file.display(), database.display());
            if let Some(kept) = kept {
                println!("the store it replaced is kept as {}", kept.display());
            }
        }
        Command::Demo { records, days, seed, organisation, db } => {
            let (config, store) = open_configured(cli_config, db).await?;
            if let Some(first) =
                parley_server::bootstrap::bootstrap(store.as_ref(), &config).await.map_err(|e| e.to_string())?
            {
                print_first_start(&first, None);
            }
            let org = admin::organisation(store.as_ref(), organisation.as_deref()).await.map_err(failed)?;
            let options = parley_server::ops::demo::DemoOptions { records, days, seed };
            let result = parley_server::ops::demo::demo(store.as_ref(), org.id, options, &Interrupt::listen()).await;
            store.close().await;
            let summary = result?;
            for (id, name) in &summary.projects {
                println!("project {id}: {name}");
            }
            println!(
                "stored {} records, {} messages, {} steps, {} goal events and {} handovers",
                summary.records, summary.messages, summary.steps, summary.goal_events, summary.escalations
            );
            if summary.interrupted {
                return Err("interrupted; what is stored is whole, and the demo projects can be deleted".into());
            }
            println!("next: parley serve, then open the dashboard at the address it prints");
        }
        Command::Import(args) => {
            let (config, store) = open_configured(cli_config, args.db).await?;
            let org = admin::organisation(store.as_ref(), args.organisation.as_deref()).await.map_err(failed)?;
            let options = ImportOptions {
                collection: args.collection,
                files: args.files,
                format: args.format,
                from_odata: args.from_odata,
                apikey: args.apikey,
                project: id_arg("--project", args.project.as_deref())?,
                strict: args.strict,
                batch: args.batch as usize,
                restart: args.restart,
                state_dir: config.data_dir.clone(),
            };
            let result =
                parley_server::ops::import::import(store.as_ref(), org.id, &options, &Interrupt::listen()).await;
            store.close().await;
            let summary = result?;
            let rate = if summary.seconds > 0.0 { summary.read as f64 / summary.seconds } else { 0.0 };
            println!(
                "read {} rows in {:.1} s ({:.0} rows/s): {} inserted, {} duplicates, {} updated, {} dropped, {} refused",
                summary.read,
                summary.seconds,
                rate,
                summary.inserted,
                summary.duplicates,
                summary.updated,
                summary.dropped,
                summary.refused
            );
            if summary.interrupted {
                return Err("interrupted; every batch read is stored whole: run the same command again to go on".into());
            }
            if summary.refused > 0 {
                return Err(format!("{} rows were refused (see above); the others are imported", summary.refused));
            }
        }
        Command::Export(args) => {
            let (_, store) = open_configured(cli_config, args.db).await?;
            let org = admin::organisation(store.as_ref(), args.organisation.as_deref()).await.map_err(failed)?;
            let options = ExportOptions {
                collection: args.collection,
                project: id_arg("--project", args.project.as_deref())?,
                from: time_arg("--from", args.from.as_deref())?,
                to: time_arg("--to", args.to.as_deref())?,
                format: args
                    .format
                    .or(args.output.as_deref().and_then(ExportFormat::of_path))
                    .unwrap_or(ExportFormat::Ndjson),
                output: args.output.clone(),
            };
            let result =
                parley_server::ops::export::export(store.as_ref(), org.id, &options, &Interrupt::listen()).await;
            store.close().await;
            let summary = result?;
            if summary.interrupted {
                return Err("interrupted; nothing was written".into());
            }
            let rate = if summary.seconds > 0.0 { summary.rows as f64 / summary.seconds } else { 0.0 };
            eprintln!("exported {} rows in {:.1} s ({:.0} rows/s)", summary.rows, summary.seconds, rate);
        }
        Command::Serve(_) | Command::Config(_) | Command::Migrate(_) => {}
    }
    Ok(())
}

/// `parley migrate`: creates the database first when asked, then applies the migrations.
async fn migrate(config: &Config, create_database: bool) -> Result<(), String> {
    let url = config.effective_database_url();
    if create_database {
        match parley_store::create_database(&url).await {
            Ok(true) => println!("database created"),
            Ok(false) => {}
            Err(e) => return Err(format!("cannot create the database: {e}")),
        }
    }
    let store = parley_store::open(&url, config.database_pool_size)
        .await
        .map_err(|e| format!("cannot open the database: {e}"))?;
    store.close().await;
    println!("migrations applied");
    Ok(())
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
        Command::Migrate(args) => match load(cli.config.as_ref(), args.server) {
            Ok(config) => migrate(&config, args.create_database).await,
            Err(e) => Err(e),
        },
        command => administer(cli.config.as_ref(), command).await,
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
    let _log = parley_server::telemetry::init_logging(config.log_format)
        .map_err(|e| format!("cannot start the log writer: {e}"))?;
    // The embedded store is this process's while it runs: `parley restore` (or a second server)
    // finds it locked.
    let _lock = match parley_store::sqlite_path(&config.effective_database_url()) {
        Some(database) => Some(backup::DataDirLock::take(database.parent().unwrap_or(std::path::Path::new(".")))?),
        None => None,
    };
    let running = parley_server::start(&config).await.map_err(|e| e.to_string())?;
    let base = format!("http://{}", running.addr);
    match &running.first_start {
        Some(first) => print_first_start(first, Some(&base)),
        None => println!(
            "parley: listening on {base}. A new API key: parley keys create --user EMAIL; a new password: \
             parley users reset-password --email EMAIL"
        ),
    }
    println!(
        "parley: the dashboard is at {base}/insights, the API reference at {base}/reference, and the README's \
         first steps go on from here."
    );
    running.until(shutdown_signal()).await.map_err(|e| e.to_string())
}

/// What the first start made, shown once; with the server's address, how to try it.
fn print_first_start(first: &parley_server::bootstrap::FirstStart, base: Option<&str>) {
    println!("parley: first start. Created organisation {} with admin user {}.", first.organisation, first.admin_email);
    let key = match &first.generated_api_key {
        Some(key) => {
            println!("parley: admin API key (shown only now, keep it safe): {key}");
            key.clone()
        }
        None => {
            println!("parley: the admin API key is the one given in PARLEY_ADMIN_API_KEY.");
            "$PARLEY_ADMIN_API_KEY".to_owned()
        }
    };
    match &first.generated_password {
        Some(password) => println!("parley: admin password (shown only now, keep it safe): {password}"),
        None => println!("parley: the admin password is the one given in PARLEY_ADMIN_PASSWORD."),
    }
    if let Some(base) = base {
        println!(
            "parley: try  curl -s -H \"X-API-Key: {key}\" -H 'Content-Type: application/json' \
             -d '{{\"name\": \"my bot\"}}' {base}/new/v2.0/projects"
        );
    }
}
