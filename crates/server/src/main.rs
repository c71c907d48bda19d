//! The `parley` binary.

use std::path::PathBuf;
use std::process::ExitCode;

use std::sync::Arc;

use clap::{Parser, Subcommand};
use parley_server::admin;
use parley_server::config::{Config, Overrides};
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
    let config = load(cli_config, ServerArgs { listen: None, data_dir: db.data_dir, database: db.database })?;
    parley_store::open(&config.effective_database_url(), 2).await.map_err(|e| format!("cannot open the database: {e}"))
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
            let copied = tokio::task::spawn_blocking(move || backup::backup(&database, &target))
                .await
                .map_err(|e| e.to_string())??;
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
        Some(first) => {
            println!(
                "parley: first start. Created organisation {} with admin user {}.",
                first.organisation, first.admin_email
            );
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
            println!(
                "parley: try  curl -s -H \"X-API-Key: {key}\" -H 'Content-Type: application/json' \
                 -d '{{\"name\": \"my bot\"}}' {base}/new/v2.0/projects"
            );
        }
        None => println!(
            "parley: listening on {base}. A new API key: parley keys create --user EMAIL; a new password: \
             parley users reset-password --email EMAIL"
        ),
    }
    println!("parley: the API reference is at {base}/ and the README's first steps go on from here.");
    running.until(shutdown_signal()).await.map_err(|e| e.to_string())
}

/// SIGINT or SIGTERM. What follows is [`parley_server::Running::stop`]: stop accepting, finish
/// requests in flight, stop background work between two transactions, flush the store, exit 0.
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
