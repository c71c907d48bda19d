//! Configuration: built-in defaults, then an optional TOML file, then `PARLEY_…` environment
//! variables, then flags (operations.md, "Start"). Unknown keys and bad values stop the start
//! with a message that names them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format as _, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// The effective configuration of a parley node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address and port to listen on; port 0 picks a free one.
    pub listen: SocketAddr,
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
    /// `auto` (JSON unless on a terminal), `json` or `text`.
    pub log_format: LogFormat,
    /// Seconds a node may answer who an API key acts for, and what a caller may do in a
    /// project, from memory. Changes made through this node take effect at once; changes made
    /// through another node are seen after at most this long. 0 looks them up on every request.
    pub access_cache_secs: u64,
    /// Seconds a request may take before it is answered 504.
    pub request_timeout_secs: u64,
}

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
            data_dir: PathBuf::from("./parley-data"),
            database_url: None,
            database_pool_size: 16,
            admin_api_key: None,
            admin_email: "admin@localhost".into(),
            log_format: LogFormat::Auto,
            access_cache_secs: 5,
            request_timeout_secs: 30,
        }
    }
}

/// Environment variables read, as `PARLEY_` + the upper-cased key.
const ENV_KEYS: [&str; 9] = [
    "listen",
    "data_dir",
    "database_url",
    "database_pool_size",
    "admin_api_key",
    "admin_email",
    "log_format",
    "request_timeout_secs",
    "access_cache_secs",
];

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
        if self.database_pool_size == 0 {
            return Err("invalid configuration: database_pool_size must be at least 1".into());
        }
        if self.request_timeout_secs == 0 {
            return Err("invalid configuration: request_timeout_secs must be at least 1".into());
        }
        Ok(())
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
                *secret = Some("********".into());
            }
        };
        hide(&mut shown.admin_api_key);
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
        Some((user, _)) => format!("{scheme}://{user}:********@{host}"),
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
    fn bad_values_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("parley.toml");
        std::fs::write(&file, "listen = \"nowhere\"\n").unwrap();
        let error = Config::load(Some(&file), &Overrides::default()).unwrap_err();
        assert!(error.contains("listen"), "{error}");
    }

    #[test]
    fn secrets_are_hidden() {
        let config = Config {
            admin_api_key: Some("0123456789abcdef0123".into()),
            database_url: Some("postgres://u:pw@h/db".into()),
            ..Config::default()
        };
        let text = config.to_redacted_toml();
        assert!(!text.contains("0123456789abcdef0123") && !text.contains(":pw@"), "{text}");
    }
}
