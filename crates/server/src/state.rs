//! What every handler shares.

use std::sync::Arc;

use parley_store::Store;
use tokio::sync::Notify;

use crate::tokens::AccessTokens;

/// The application state: the store, chosen once at start from the database URL, the access
/// token key read from it, and what the handlers need of the configuration and of the
/// background work.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub tokens: Arc<AccessTokens>,
    /// How long an update that matched nothing waits for its record; `None` when it does not.
    pub pending_update_window: Option<time::Duration>,
    /// Wakes the erasure worker when a task is queued.
    pub tasks_queued: Arc<Notify>,
    /// Where clients reach this node, without a trailing `/`: the start of absolute links.
    pub public_url: Arc<str>,
    /// What this node has done, for `GET /metrics`.
    pub metrics: Arc<crate::metrics::Metrics>,
}
