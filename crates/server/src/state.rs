//! What every handler shares.

use std::sync::Arc;

use parley_store::Store;

/// The application state: the store, chosen once at start from the database URL.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
}
