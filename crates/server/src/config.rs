//! Configuration: built-in defaults, then an optional TOML file, then `PARLEY_…` environment
//! variables, then flags (docs/contract/operations.md, "Start"). Unknown keys and bad values stop the start
//! with a message that names them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format as _, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// The effective configuration of a parley node. Its `Debug` form hides the secrets.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address and port to listen on; port 0 picks a free one.
    pub listen: SocketAddr,
    /// The address clients reach this node at (`https://analytics.example.com`), behind a proxy
    /// or a load balancer; absolute links (OData's) start with it. Default `http://` and the
    /// listening address. A request's `Host` header is never used.
    pub public_url: Option<String>,
    /// Where the embedded store lives.
    pub data_dir: PathBuf,
    /// `sqlite://PATH` or `postgres://…`; default the SQLite file in the data dir.
    pub database_url: Option<String>,
    /// Most connections the PostgreSQL pool opens (unused by the embedded engine).
    pub database_pool_size: usize,
    /// First start only: the bootstrap admin's API key, instead of a generated one.
    pub admin_api_key: Option<String>,
    /// First start only: the bootstrap admin's email.
    pub admin_email: String,
    /// First start only: the bootstrap admin's password, instead of a generated one.
    pub admin_password: Option<String>,
    /// Requests per minute allowed to one credential (or, without one, to one client address);
    /// 0 turns rate limiting off.
    pub rate_limit_per_minute: u32,
    /// `auto` (JSON unless on a terminal), `json` or `text`.
    pub log_format: LogFormat,
    /// Seconds a request may take before it is answered 504.
    pub request_timeout_secs: u64,
    /// Client connections served at once; beyond them a few more are answered, health probes
    /// as usual and everything else 503 (docs/operations.md, "Connections").
    pub max_connections: usize,
    /// Seconds a connection has to send the head of its next request, from when it opens or
    /// from the end of its previous answer; a connection that runs out is closed.
    pub header_timeout_secs: u64,
    /// Seconds an update that names an input and matches nothing is kept for its record to be
    /// ingested (a pending update); 0 keeps none.
    pub pending_update_window_secs: u64,
    /// Seconds between two runs of the retention purge.
    pub retention_interval_secs: u64,
    /// Records deleted per transaction by erasure tasks and the retention purge.
    pub delete_batch_size: u32,
    /// Seconds a node may answer whom an API key acts for, and what a caller may do in a
    /// project, from memory. Changes made through this node act at once; changes made through
    /// another node (or by an operator command) are seen after at most this long. 0 looks both
    /// up on every request.
    pub access_cache_secs: u64,
}

/// Shows every field but the admin's API key and password, and the password of the database
/// URL, so that a configuration logged or printed in a panic does not leak them. The match
/// names every field, so that a new one must be considered here.
impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Config {
            listen,
            public_url,
            data_dir,
            database_url,
            database_pool_size,
            admin_api_key,
            admin_email,
            admin_password,
            rate_limit_per_minute,
            log_format,
            request_timeout_secs,
            max_connections,
            header_timeout_secs,
            pending_update_window_secs,
            retention_interval_secs,
            delete_batch_size,
            access_cache_secs,
        } = self;
        let hidden = |secret: &Option<String>| secret.as_ref().map(|_| REDACTED);
        f.debug_struct("Config")
            .field("listen", listen)
            .field("public_url", public_url)
            .field("data_dir", data_dir)
            .field("database_url", &database_url.as_deref().map(redact_url_password))
            .field("database_pool_size", database_pool_size)
            .field("admin_api_key", &hidden(admin_api_key))
            .field("admin_email", admin_email)
            .field("admin_password", &hidden(admin_password))
            .field("rate_limit_per_minute", rate_limit_per_minute)
            .field("log_format", log_format)
            .field("request_timeout_secs", request_timeout_secs)
            .field("max_connections", max_connections)
            .field("header_timeout_secs", header_timeout_secs)
            .field("pending_update_window_secs", pending_update_window_secs)
            .field("retention_interval_secs", retention_interval_secs)
            .field("delete_batch_size", delete_batch_size)
            .field("access_cache_secs", access_cache_secs)
            .finish()
    }
}

/// What a hidden secret shows instead.
const REDACTED: &str = "********";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Auto,
    Json,
    Text,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: None,
            data_dir: PathBuf::from("./parley-data"),
            database_url: None,
            database_pool_size: 16,
            admin_api_key: None,
            admin_email: "admin@localhost".into(),
            admin_password: None,
            rate_limit_per_minute: 1000,
            log_format: LogFormat::Auto,
            request_timeout_secs: 30,
            max_connections: 4096,
            header_timeout_secs: 20,
            pending_update_window_secs: 600,
            retention_interval_secs: 60,
            delete_batch_size: 1000,
            access_cache_secs: 5,
        }
    }
}

/// Environment variables read, as `PARLEY_` + the upper-cased key.
const ENV_KEYS: [&str; 17] = [
    "listen",
    "public_url",
    "data_dir",
    "database_url",
    "database_pool_size",
    "admin_api_key",
    "admin_email",
    "admin_password",
    "rate_limit_per_minute",
    "log_format",
    "request_timeout_secs",
    "max_connections",
    "header_timeout_secs",
    "pending_update_window_secs",
    "retention_interval_secs",
    "delete_batch_size",
    "access_cache_secs",
];

/// The longest pending-update window: 7 days.
const MAX_PENDING_UPDATE_WINDOW_SECS: u64 = 7 * 24 * 3600;
/// The most client connections one node may be told to serve.
const MAX_CONNECTIONS: usize = 1_000_000;
/// The longest a connection may be given to send a request's head: an hour.
const MAX_HEADER_TIMEOUT_SECS: u64 = 3600;
/// The most records one delete transaction may take.
const MAX_DELETE_BATCH_SIZE: u32 = 100_000;
/// The longest a node may answer access lookups from memory: an hour. Longer would let a key
/// revoked through another node work on this one for longer than anyone would expect.
const MAX_ACCESS_CACHE_SECS: u64 = 3600;

/// Values given as command-line flags; each overrides everything else.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
}

impl Config {
    /// Loads the layered configuration.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Config, String> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            if !file.exists() {
                return Err(format!("configuration file {} does not exist", file.display()));
            }
            figment = figment.merge(Toml::file_exact(file));
        }
        figment = figment.merge(Env::prefixed("PARLEY_").only(&ENV_KEYS)).merge(Serialized::defaults(overrides));
        let config: Config = figment.extract().map_err(|e| format!("invalid configuration: {e}"))?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), String> {
        if let Some(key) = &self.admin_api_key
            && key.len() < 16
        {
            return Err(
                "invalid configuration: admin_api_key (PARLEY_ADMIN_API_KEY) must be at least 16 characters".into()
            );
        }
        if let Some(password) = &self.admin_password {
            parley_core::identity::validate_password(password).map_err(|_| {
                format!(
                    "invalid configuration: admin_password (PARLEY_ADMIN_PASSWORD) must be {} to 1024 characters",
                    parley_core::identity::MIN_PASSWORD_CHARS
                )
            })?;
        }
        if let Err(e) = parley_core::identity::normalise_email(&self.admin_email) {
            return Err(format!("invalid configuration: admin_email (PARLEY_ADMIN_EMAIL): {e}"));
        }
        if let Some(url) = &self.public_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(format!(
                "invalid configuration: public_url (PARLEY_PUBLIC_URL) must start with http:// or https://, not '{url}'"
            ));
        }
        if self.database_pool_size == 0 {
            return Err("invalid configuration: database_pool_size must be at least 1".into());
        }
        if self.request_timeout_secs == 0 {
            return Err("invalid configuration: request_timeout_secs must be at least 1".into());
        }
        if !(1..=MAX_CONNECTIONS).contains(&self.max_connections) {
            return Err(format!("invalid configuration: max_connections must be from 1 to {MAX_CONNECTIONS}"));
        }
        if !(1..=MAX_HEADER_TIMEOUT_SECS).contains(&self.header_timeout_secs) {
            return Err(format!(
                "invalid configuration: header_timeout_secs must be from 1 to {MAX_HEADER_TIMEOUT_SECS}"
            ));
        }
        if self.pending_update_window_secs > MAX_PENDING_UPDATE_WINDOW_SECS {
            return Err(format!(
                "invalid configuration: pending_update_window_secs must be at most {MAX_PENDING_UPDATE_WINDOW_SECS} (7 days)"
            ));
        }
        if self.retention_interval_secs == 0 {
            return Err("invalid configuration: retention_interval_secs must be at least 1".into());
        }
        if !(1..=MAX_DELETE_BATCH_SIZE).contains(&self.delete_batch_size) {
            return Err(format!("invalid configuration: delete_batch_size must be from 1 to {MAX_DELETE_BATCH_SIZE}"));
        }
        if self.access_cache_secs > MAX_ACCESS_CACHE_SECS {
            return Err(format!(
                "invalid configuration: access_cache_secs must be at most {MAX_ACCESS_CACHE_SECS} (an hour)"
            ));
        }
        Ok(())
    }

    /// How long an update that matched nothing waits for its record; `None` when it does not.
    pub fn pending_update_window(&self) -> Option<time::Duration> {
        (self.pending_update_window_secs > 0).then(|| time::Duration::seconds(self.pending_update_window_secs as i64))
    }

    /// How long a node answers key and project lookups from memory; zero when it does not.
    pub fn access_cache_ttl(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.access_cache_secs)
    }

    /// The database URL in force: the configured one, or the SQLite file in the data dir.
    pub fn effective_database_url(&self) -> String {
        self.database_url.clone().unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("parley.db").display()))
    }

    /// The configuration as TOML with secrets hidden, for `parley config`.
    pub fn to_redacted_toml(&self) -> String {
        let mut shown = self.clone();
        let hide = |secret: &mut Option<String>| {
            if secret.is_some() {
                *secret = Some(REDACTED.into());
            }
        };
        hide(&mut shown.admin_api_key);
        hide(&mut shown.admin_password);
        if let Some(url) = &shown.database_url {
            shown.database_url = Some(redact_url_password(url));
        }
        let mut text = toml_lines(&shown);
        text.push_str(&format!("# effective database: {}\n", redact_url_password(&self.effective_database_url())));
        text
    }
}

fn toml_lines(config: &Config) -> String {
    let value = serde_json::to_value(config).unwrap_or_default();
    let mut out = String::new();
    if let serde_json::Value::Object(map) = value {
        for (key, value) in map {
            if !value.is_null() {
                out.push_str(&format!("{key} = {value}\n"));
            }
        }
    }
    out
}

/// `postgres://user:secret@host/db` → `postgres://user:********@host/db`.
fn redact_url_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let Some((userinfo, host)) = rest.split_once('@') else { return url.to_owned() };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:{REDACTED}@{host}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_in_the_file_are_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("parley.toml");
        std::fs::write(&file, "listen = \"127.0.0.1:9000\"\nlisten_port = 5\n").unwrap();
        let error = Config::load(Some(&file), &Overrides::default()).unwrap_err();
        assert!(error.contains("listen_port"), "{error}");
    }

    #[test]
    fn flags_override_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("parley.toml");
        std::fs::write(&file, "listen = \"127.0.0.1:9000\"\ndata_dir = \"/tmp/x\"\n").unwrap();
        let overrides = Overrides { listen: Some("127.0.0.1:0".parse().unwrap()), ..Overrides::default() };
        let config = Config::load(Some(&file), &overrides).unwrap();
        assert_eq!(config.listen.port(), 0);
        assert_eq!(config.data_dir, PathBuf::from("/tmp/x"));
    }

    #[test]
    fn the_public_url_must_be_an_http_address() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("parley.toml");
        std::fs::write(&file, "public_url = \"analytics.example.com\"\n").unwrap();
        let error = Config::load(Some(&file), &Overrides::default()).unwrap_err();
        assert!(error.contains("public_url (PARLEY_PUBLIC_URL) must start with http:// or https://"), "{error}");
        std::fs::write(&file, "public_url = \"https://analytics.example.com\"\n").unwrap();
        let config = Config::load(Some(&file), &Overrides::default()).unwrap();
        assert_eq!(config.public_url.as_deref(), Some("https://analytics.example.com"));
    }

    #[test]
    fn bad_values_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("parley.toml");
        std::fs::write(&file, "listen = \"nowhere\"\n").unwrap();
        let error = Config::load(Some(&file), &Overrides::default()).unwrap_err();
        assert!(error.contains("listen"), "{error}");
        std::fs::write(&file, "max_connections = 0\n").unwrap();
        let error = Config::load(Some(&file), &Overrides::default()).unwrap_err();
        assert_eq!(error, "invalid configuration: max_connections must be from 1 to 1000000");
        std::fs::write(&file, "header_timeout_secs = 0\n").unwrap();
        let error = Config::load(Some(&file), &Overrides::default()).unwrap_err();
        assert_eq!(error, "invalid configuration: header_timeout_secs must be from 1 to 3600");
    }

    #[test]
    fn lifecycle_settings_have_defaults_and_bounds() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("parley.toml");
        let defaults = Config::default();
        assert_eq!(defaults.pending_update_window(), Some(time::Duration::minutes(10)));
        assert_eq!((defaults.retention_interval_secs, defaults.delete_batch_size), (60, 1000));
        std::fs::write(&file, "pending_update_window_secs = 0\nretention_interval_secs = 5\ndelete_batch_size = 10\n")
            .unwrap();
        let config = Config::load(Some(&file), &Overrides::default()).unwrap();
        assert_eq!(config.pending_update_window(), None);
        assert_eq!((config.retention_interval_secs, config.delete_batch_size), (5, 10));
        for (text, key) in [
            ("pending_update_window_secs = 604801", "pending_update_window_secs"),
            ("pending_update_window_secs = -1", "pending_update_window_secs"),
            ("retention_interval_secs = 0", "retention_interval_secs"),
            ("delete_batch_size = 0", "delete_batch_size"),
            ("delete_batch_size = 100001", "delete_batch_size"),
        ] {
            std::fs::write(&file, text).unwrap();
            let error = Config::load(Some(&file), &Overrides::default()).unwrap_err();
            assert!(error.contains(key), "{text}: {error}");
        }
    }

    #[test]
    fn the_access_cache_has_a_default_a_bound_and_can_be_turned_off() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("parley.toml");
        assert_eq!(Config::default().access_cache_ttl(), std::time::Duration::from_secs(5));
        std::fs::write(&file, "access_cache_secs = 0\n").unwrap();
        let config = Config::load(Some(&file), &Overrides::default()).unwrap();
        assert!(config.access_cache_ttl().is_zero());
        std::fs::write(&file, "access_cache_secs = 3600\n").unwrap();
        assert_eq!(Config::load(Some(&file), &Overrides::default()).unwrap().access_cache_secs, 3600);
        for text in ["access_cache_secs = 3601", "access_cache_secs = -1"] {
            std::fs::write(&file, text).unwrap();
            let error = Config::load(Some(&file), &Overrides::default()).unwrap_err();
            assert!(error.contains("access_cache_secs"), "{text}: {error}");
        }
    }

    #[test]
    fn secrets_are_hidden() {
        let config = Config {
            admin_api_key: Some("0123456789abcdef0123".into()),
            admin_password: Some("a-secret-password".into()),
            database_url: Some("postgres://u:pw@h/db".into()),
            ..Config::default()
        };
        let text = config.to_redacted_toml();
        assert!(!text.contains("0123456789abcdef0123") && !text.contains(":pw@"), "{text}");
        assert!(!text.contains("a-secret-password"), "{text}");
        assert!(text.contains("rate_limit_per_minute = 1000"), "{text}");
        let debug = format!("{config:?}");
        assert!(!debug.contains("0123456789abcdef0123") && !debug.contains(":pw@"), "{debug}");
        assert!(!debug.contains("a-secret-password"), "{debug}");
        assert!(debug.contains("postgres://u:********@h/db") && debug.contains("admin_email"), "{debug}");
    }

    #[test]
    fn a_short_admin_password_or_a_bad_admin_email_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("parley.toml");
        std::fs::write(&file, "admin_password = \"short\"\n").unwrap();
        let error = Config::load(Some(&file), &Overrides::default()).unwrap_err();
        assert!(error.contains("admin_password") && !error.contains("short"), "{error}");
        std::fs::write(&file, "admin_email = \"nobody\"\n").unwrap();
        let error = Config::load(Some(&file), &Overrides::default()).unwrap_err();
        assert!(error.contains("admin_email"), "{error}");
        std::fs::write(&file, "rate_limit_per_minute = -1\n").unwrap();
        let error = Config::load(Some(&file), &Overrides::default()).unwrap_err();
        assert!(error.contains("rate_limit_per_minute"), "{error}");
    }
}
