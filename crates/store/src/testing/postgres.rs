use std::net::SocketAddr;

use parley_core::ObjectId;

/// The variable that names the PostgreSQL server for tests.
pub(super) const POSTGRES_URL: &str = "PARLEY_TEST_POSTGRES_URL";
/// The variable that names the coordinator of a Citus cluster for tests.
pub(super) const CITUS_URL: &str = "PARLEY_TEST_CITUS_URL";
/// The variable that lists the cluster's workers, `host:port,host:port`.
pub(super) const CITUS_WORKERS: &str = "PARLEY_TEST_CITUS_WORKERS";

/// A database made for one test on a PostgreSQL server (on every node of a Citus cluster), dropped
/// with this value.
pub struct PostgresDatabase {
    /// The administrative URL of every server that holds the database.
    admin_urls: Vec<String>,
    name: String,
    url: String,
}

impl PostgresDatabase {
    /// Creates a database of its own on the server `admin_url` names.
    ///
    /// Its locale is an ICU one whose order is not byte order, so that tests see whether the
    /// schema sorts text by bytes whatever the database's locale; plain when the server has no ICU.
    pub async fn create(admin_url: &str) -> PostgresDatabase {
        let name = format!("parley_test_{}", ObjectId::generate());
        let admin = postgres_client(admin_url).await;
        let icu = format!("CREATE DATABASE {name} TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US'");
        if admin.batch_execute(&icu).await.is_err() {
            admin.batch_execute(&format!("CREATE DATABASE {name}")).await.expect("CREATE DATABASE");
        }
        let url = with_database(admin_url, &name);
        PostgresDatabase { admin_urls: vec![admin_url.to_owned()], name, url }
    }

    /// Creates a database of its own on every node of the Citus cluster whose coordinator
    /// `admin_url` names (Citus does not pass `CREATE DATABASE` on), with the extension on each and
    /// the workers registered with the coordinator. parley lays its tables out itself.
    pub async fn create_on_citus(admin_url: &str, workers: &[String]) -> PostgresDatabase {
        let name = format!("parley_test_{}", ObjectId::generate());
        let admin_urls: Vec<String> =
            std::iter::once(admin_url.to_owned()).chain(workers.iter().map(|w| with_address(admin_url, w))).collect();
        // Dropped on every node even if a step below fails.
        let database = PostgresDatabase { admin_urls, url: with_database(admin_url, &name), name };
        for admin in &database.admin_urls {
            postgres_client(admin)
                .await
                .batch_execute(&format!("CREATE DATABASE {}", database.name))
                .await
                .expect("CREATE DATABASE");
            let node = postgres_client(&with_database(admin, &database.name)).await;
            node.batch_execute("CREATE EXTENSION citus").await.expect("CREATE EXTENSION citus");
        }
        // Registering a worker copies the coordinator's roles onto it; two registrations at once
        // update the same role there and one fails, so the tests of a process take turns.
        static REGISTERING: std::sync::LazyLock<tokio::sync::Mutex<()>> = std::sync::LazyLock::new(Default::default);
        let _turn = REGISTERING.lock().await;
        let coordinator = postgres_client(&database.url).await;
        let address = postgres_address(admin_url).await;
        coordinator
            .execute(
                "SELECT citus_set_coordinator_host($1, $2)",
                &[&address.ip().to_string(), &i32::from(address.port())],
            )
            .await
            .expect("citus_set_coordinator_host");
        for worker in workers {
            let address = postgres_address(&with_address(admin_url, worker)).await;
            coordinator
                .execute("SELECT citus_add_node($1, $2)", &[&address.ip().to_string(), &i32::from(address.port())])
                .await
                .expect("citus_add_node");
        }
        database
    }

    /// The URL of the database.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for PostgresDatabase {
    fn drop(&mut self) {
        let (admin_urls, name) = (self.admin_urls.clone(), self.name.clone());
        // On a thread and runtime of its own: `drop` cannot wait inside the test's runtime, and it
        // must also run when the test panicked.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            runtime.block_on(async {
                for admin_url in &admin_urls {
                    let Ok((client, connection)) = tokio_postgres::connect(admin_url, tokio_postgres::NoTls).await
                    else {
                        continue;
                    };
                    tokio::spawn(connection);
                    let _ = client.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
                }
                Some(())
            })
        });
        let _ = dropped.join();
    }
}

/// A connection to the database `url` names, for statements no store method makes.
pub async fn postgres_client(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("{POSTGRES_URL} is set but PostgreSQL at {url} cannot be reached: {e}"));
    tokio::spawn(connection);
    client
}

/// The `host:port` a PostgreSQL URL names, resolved.
pub async fn postgres_address(url: &str) -> SocketAddr {
    let config: tokio_postgres::Config = url.parse().expect("a PostgreSQL URL");
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
        _ => panic!("{POSTGRES_URL} must name a TCP host"),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    tokio::net::lookup_host((host.as_str(), port)).await.expect("the host resolves").next().expect("an address")
}

/// `url` naming `database` instead of its own, its parameters kept.
pub fn with_database(url: &str, database: &str) -> String {
    let (scheme, user, address, rest) = url_parts(url);
    let query = rest.find('?').map_or("", |i| &rest[i..]);
    format!("{scheme}{user}{address}/{database}{query}")
}

/// `url` with its `host:port` replaced by `address`.
pub fn with_address(url: &str, address: &str) -> String {
    let (scheme, user, _, rest) = url_parts(url);
    format!("{scheme}{user}{address}{rest}")
}

/// The parts of a `postgres://` URL: scheme with `://`, user info with `@`, `host:port`, and the
/// rest (path and query).
fn url_parts(url: &str) -> (&str, &str, &str, &str) {
    let start = url.find("://").map_or(0, |i| i + 3);
    let end = url[start..].find(['/', '?']).map_or(url.len(), |i| start + i);
    let at = url[start..end].rfind('@').map_or(start, |i| start + i + 1);
    (&url[..start], &url[start..at], &url[at..end], &url[end..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_replaces_the_path_and_keeps_the_parameters() {
        let cases = [
            ("postgres://u:p@db:5432/postgres?sslmode=disable", "postgres://u:p@db:5432/t?sslmode=disable"),
            ("postgres://u@db/postgres", "postgres://u@db/t"),
            ("postgres://db:5432", "postgres://db:5432/t"),
            ("postgresql://db?application_name=x", "postgresql://db/t?application_name=x"),
        ];
        for (url, expected) in cases {
            assert_eq!(with_database(url, "t"), expected, "{url}");
        }
    }

    #[test]
    fn an_address_replaces_host_and_port_only() {
        let cases = [
            ("postgres://u:p@db:5432/x?sslmode=disable", "postgres://u:p@127.0.0.1:9/x?sslmode=disable"),
            ("postgres://db/x", "postgres://127.0.0.1:9/x"),
            ("postgres://u@db:5432", "postgres://u@127.0.0.1:9"),
        ];
        for (url, expected) in cases {
            assert_eq!(with_address(url, "127.0.0.1:9"), expected, "{url}");
        }
    }
}
