use std::path::Path;
use std::time::Duration;

use serde_json::{Value as Json, json};

/// A minimal valid record, as a client sends it for ingest.
pub fn record(project: &str, contact: &str, session: &str, input: &str) -> Json {
    json!({ "projectId": project, "contactId": contact, "sessionId": session, "inputId": input })
}

/// Polls `check` until it gives a value, for at most `limit`: for waiting on background work.
pub async fn eventually<T, F, Fut>(limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(tokio::time::Instant::now() < deadline, "the condition did not hold within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A connection to a SQLite database file, for looking below the store, that waits for the
/// store's writer instead of failing.
pub fn sqlite_connection(path: &Path) -> rusqlite::Connection {
    let connection = rusqlite::Connection::open(path).expect("the SQLite file opens");
    connection.busy_timeout(Duration::from_secs(10)).expect("a busy timeout");
    connection
}
