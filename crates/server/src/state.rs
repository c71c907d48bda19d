//! What every handler shares.

use std::sync::Arc;

use parley_store::Store;

use crate::tokens::AccessTokens;

/// The application state: the store, chosen once at start from the database URL, and the access
/// token key read from it.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub tokens: Arc<AccessTokens>,
}
