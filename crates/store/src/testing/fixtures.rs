use std::path::Path;
use std::time::Duration;

use serde_json::{Value as Json, json};

/// A small deterministic generator (xorshift64*) for generated test data, so that a failure can
/// be replayed by its seed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// True `percent` times in a hundred.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// An index below `n`, the first ones far more often (a skewed choice).
    pub fn skewed(&mut self, n: usize) -> usize {
        let u = self.below(1_000_000) as f64 / 1_000_000.0;
        ((u * u * u) * n as f64) as usize
    }

    pub fn pick<'a>(&mut self, list: &[&'a str]) -> &'a str {
        list[self.below(list.len() as u64) as usize]
    }

    /// One of `list` two times in three, else nothing.
    pub fn maybe_pick<'a>(&mut self, list: &[&'a str]) -> Option<&'a str> {
        let value = self.pick(list);
        (self.below(3) > 0).then_some(value)
    }
}

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
